import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyPolicy, isoWeek, localTimeIn, type RetentionPolicy } from './retention.js';

/**
 * Golden files: test/golden/retention/<case>.json holds the input (time zone, policy, backups) and the
 * expected result. `UPDATE_GOLDEN=1 npx vitest run src/catalog/retention.test.ts` rewrites `expected`
 * (then review the diff).
 */
const goldenDir = join(import.meta.dirname, '..', '..', 'test', 'golden', 'retention');

interface GoldenCase {
  description: string;
  timeZone: string;
  policy: RetentionPolicy;
  backups: { id: string; time: string }[];
  expected?: { keep: string[]; remove: string[]; reasons: Record<string, string[]> };
}

const files = readdirSync(goldenDir)
  .filter((name) => name.endsWith('.json'))
  .sort();

function outcome(golden: GoldenCase): NonNullable<GoldenCase['expected']> {
  const result = applyPolicy(golden.backups, golden.policy, { timeZone: golden.timeZone });
  return {
    keep: result.keep.map((b) => b.id),
    remove: result.remove.map((b) => b.id),
    reasons: Object.fromEntries(result.reasons.map((r) => [r.id, r.matches])),
  };
}

describe('applyPolicy golden files', () => {
  it('has at least 20 cases, time zones and DST edges included', () => {
    const cases = files.map((name) => JSON.parse(readFileSync(join(goldenDir, name), 'utf8')) as GoldenCase);

    expect(cases.length).toBeGreaterThanOrEqual(20);
    expect(cases.filter((c) => c.timeZone === 'Europe/Paris').length).toBeGreaterThanOrEqual(5);
  });

  it.each(files)('%s', (name) => {
    const path = join(goldenDir, name);
    const golden = JSON.parse(readFileSync(path, 'utf8')) as GoldenCase;

    const actual = outcome(golden);

    if (process.env.UPDATE_GOLDEN === '1') {
      writeFileSync(path, `${JSON.stringify({ ...golden, expected: actual }, null, 2)}\n`);
      return;
    }
    expect(golden.expected, `${name} has no expected result: run with UPDATE_GOLDEN=1`).toBeDefined();
    expect(actual).toEqual(golden.expected);
    // Nothing lost, nothing twice.
    expect([...actual.keep, ...actual.remove].sort()).toEqual(golden.backups.map((b) => b.id).sort());
  });
});

describe('applyPolicy', () => {
  it('counts the repeated hour of the Paris fall-back night as one hourly period', () => {
    const backups = [
      { id: 'cest-0210', time: '2024-10-27T00:10:00Z' },
      { id: 'cet-0210', time: '2024-10-27T01:10:00Z' },
      { id: 'cet-0310', time: '2024-10-27T02:10:00Z' },
    ];

    const paris = applyPolicy(backups, { hourly: 10 }, { timeZone: 'Europe/Paris' });
    const utc = applyPolicy(backups, { hourly: 10 }, { timeZone: 'UTC' });

    expect(paris.keep.map((b) => b.id)).toEqual(['cet-0310', 'cet-0210']);
    expect(paris.remove.map((b) => b.id)).toEqual(['cest-0210']);
    expect(utc.remove).toEqual([]);
  });

  it('keeps nothing twice and reports the period of each reason', () => {
    const result = applyPolicy(
      [
        { id: 'a', time: '2024-05-01T02:00:00Z' },
        { id: 'b', time: '2024-05-02T02:00:00Z' },
      ],
      { last: 1, daily: 2 },
      { timeZone: 'UTC' },
    );

    expect(result.reasons).toEqual([
      { id: 'b', time: '2024-05-02T02:00:00Z', matches: ['last snapshot', 'daily snapshot (2024-05-02)'] },
      { id: 'a', time: '2024-05-01T02:00:00Z', matches: ['daily snapshot (2024-05-01)'] },
    ]);
  });

  it.each([
    [{ daily: -2 }, /--keep-daily/],
    [{ weekly: 1.5 }, /--keep-weekly/],
  ])('refuses the policy %j', (policy, message) => {
    expect(() => applyPolicy([], policy)).toThrow(message);
  });

  it('refuses an unknown time zone with a hint', () => {
    expect(() => applyPolicy([], { daily: 1 }, { timeZone: 'Mars/Olympus' })).toThrow(
      /Unknown time zone 'Mars\/Olympus'/,
    );
  });
});

describe('isoWeek', () => {
  it.each([
    [2024, 12, 29, 2024, 52],
    [2024, 12, 30, 2025, 1],
    [2021, 1, 3, 2020, 53],
    [2021, 1, 4, 2021, 1],
    [2026, 1, 1, 2026, 1],
    [2027, 1, 1, 2026, 53],
  ])('%i-%i-%i is in %i-W%i', (year, month, day, weekYear, week) => {
    expect(isoWeek(year, month, day)).toEqual({ year: weekYear, week });
  });
});

describe('localTimeIn', () => {
  it.each([
    ['Europe/Paris', '2024-03-31T01:30:00Z', { year: 2024, month: 3, day: 31, hour: 3 }],
    ['Europe/Paris', '2024-10-27T00:30:00Z', { year: 2024, month: 10, day: 27, hour: 2 }],
    ['Europe/Paris', '2024-10-27T01:30:00Z', { year: 2024, month: 10, day: 27, hour: 2 }],
    ['UTC', '2024-12-31T23:59:59Z', { year: 2024, month: 12, day: 31, hour: 23 }],
  ])('%s %s', (zone, time, expected) => {
    expect(localTimeIn(zone)(Date.parse(time))).toEqual(expected);
  });
});
