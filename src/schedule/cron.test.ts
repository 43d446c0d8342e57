import { describe, expect, it } from 'vitest';
import { findTool, run } from '../host/exec.js';
import { nextRuns, parseCron, toOnCalendar } from './cron.js';

const conversions: [string, string[]][] = [
  ['15 6 * * 1-5', ['Mon..Fri *-*-* 06:15:00']],
  ['*/15 * * * *', ['*-*-* *:00/15:00']],
  ['0 2 * * *', ['*-*-* 02:00:00']],
  ['30 1,13 * * *', ['*-*-* 01,13:30:00']],
  ['0 */6 * * *', ['*-*-* 00/6:00:00']],
  ['5-10 4 * * *', ['*-*-* 04:05..10:00']],
  ['0 3 1 * *', ['*-*-01 03:00:00']],
  ['0 3 1-7 * 1', ['Mon *-*-* 03:00:00', '*-*-01..07 03:00:00']],
  ['0 0 * * 0', ['Sun *-*-* 00:00:00']],
  ['0 0 * * 7', ['Sun *-*-* 00:00:00']],
  ['0 0 * * SAT,SUN', ['Sat,Sun *-*-* 00:00:00']],
  ['0 22 * * MON-FRI', ['Mon..Fri *-*-* 22:00:00']],
  ['0 0 1 1 *', ['*-01-01 00:00:00']],
  ['0 12 * JAN,JUL *', ['*-01,07-* 12:00:00']],
  ['0 12 * 3-5 *', ['*-03..05-* 12:00:00']],
  ['0 0 */2 * *', ['*-*-01/2 00:00:00']],
  ['10-50/20 * * * *', ['*-*-* *:10/20:00']],
  ['7,8,9,20 * * * *', ['*-*-* *:07..09,20:00']],
  ['0 0 1-31 * 1', ['Mon *-*-* 00:00:00', '*-*-* 00:00:00']],
  ['@daily', ['*-*-* 00:00:00']],
  ['@hourly', ['*-*-* *:00:00']],
  ['@weekly', ['Sun *-*-* 00:00:00']],
  ['@monthly', ['*-*-01 00:00:00']],
];

describe('toOnCalendar', () => {
  it.each(conversions)('%s → %j', (cron, expected) => {
    expect(toOnCalendar(parseCron(cron))).toEqual(expected);
  });
});

/** The next run times systemd computes for the OnCalendar= lines (merged, UTC, from `base`). */
async function systemdRuns(calendars: string[], base: Date, count: number): Promise<string[]> {
  const times: string[] = [];
  for (const calendar of calendars) {
    const { stdout } = await run(
      'systemd-analyze',
      ['calendar', `--base-time=@${Math.floor(base.getTime() / 1000)}`, `--iterations=${count}`, calendar],
      { env: { TZ: 'UTC' } },
    );
    for (const match of stdout.matchAll(/(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+) UTC/g)) {
      times.push(`${match[1]!.replace(' ', 'T')}.000Z`);
    }
  }
  return [...new Set(times)].sort().slice(0, count);
}

describe('toOnCalendar against systemd-analyze calendar', () => {
  // systemd is a Debian dependency of CI (.ci/run installs it); the check fails loudly without it.
  it.each(conversions)('%s fires at the same times under systemd', async (cron) => {
    expect(findTool('systemd-analyze'), 'systemd-analyze is missing: apt-get install systemd').toBeDefined();
    const schedule = parseCron(cron);
    const base = new Date('2026-02-26T10:07:00Z');

    const expected = nextRuns(schedule, 12, { from: base, timeZone: 'UTC' }).map((d) => d.toISOString());
    const actual = await systemdRuns(toOnCalendar(schedule), base, 12);

    expect(actual).toEqual(expected);
  });
});

describe('parseCron', () => {
  it.each([
    ['', /it is empty/],
    ['* * * *', /4 field\(s\), expected 5/],
    ['0 * * * * *', /no seconds field/],
    ['61 * * * *', /expected range 0-59/],
    ['0 0 31 2 *', /Invalid explicit day of month/],
    ['0 0 L * *', /'L' is a cron-parser extension/],
    ['0 0 * * 1#2', /'#' is a cron-parser extension/],
    ['H 2 * * *', /'H' is a cron-parser extension/],
    ['@reboot', /@reboot is not a schedule/],
    ['0 0 */2 * 1', /different days in different cron implementations/],
    ['@sometimes', /unknown shortcut/],
    ['every day', /Invalid cron expression/],
  ])('refuses %j', (cron, message) => {
    expect(() => parseCron(cron)).toThrow(message);
  });

  it('accepts month and day names that contain L, W or H', () => {
    expect(parseCron('0 4 * JUL WED,THU').dayOfWeek).toEqual([3, 4]);
  });

  it('gives the next five runs in order', () => {
    const runs = nextRuns(parseCron('15 6 * * 1-5'), 5, {
      from: new Date('2026-02-27T07:00:00Z'),
      timeZone: 'UTC',
    });

    expect(runs.map((d) => d.toISOString())).toEqual([
      '2026-03-02T06:15:00.000Z',
      '2026-03-03T06:15:00.000Z',
      '2026-03-04T06:15:00.000Z',
      '2026-03-05T06:15:00.000Z',
      '2026-03-06T06:15:00.000Z',
    ]);
  });
});
