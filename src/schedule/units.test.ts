import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findTool, run } from '../host/exec.js';
import { parseCron } from './cron.js';
import { installSchedule, listSchedules, planSchedule, removeSchedule } from './install.js';
import { nameFromDataDir, renderSchedule, type ScheduleSpec, systemdQuote } from './units.js';

function spec(overrides: Partial<ScheduleSpec> = {}): ScheduleSpec {
  return {
    name: 'dss',
    cron: parseCron('15 6 * * 1-5'),
    args: ['backup', '--data-dir', '/data/dss', '--to', '/backups/dss'],
    node: process.execPath,
    cli: import.meta.filename,
    logFile: '/var/log/dssnap/dss.log',
    ...overrides,
  };
}

describe('renderSchedule for systemd', () => {
  it('writes a oneshot service and a persistent timer with the converted calendar', () => {
    const [service, timer] = renderSchedule(spec(), 'systemd');

    expect(service!.path).toBe('/etc/systemd/system/dssnap-dss.service');
    expect(service!.content).toContain(
      `ExecStart=${process.execPath} ${import.meta.filename} --log-format json backup --data-dir /data/dss --to /backups/dss\n`,
    );
    expect(service!.content).toMatch(/^Type=oneshot$/m);
    expect(service!.content).toMatch(/^SuccessExitStatus=2$/m);
    expect(service!.content).toMatch(/^StandardOutput=append:\/var\/log\/dssnap\/dss.log$/m);
    expect(timer!.path).toBe('/etc/systemd/system/dssnap-dss.timer');
    expect(timer!.content).toMatch(/^OnCalendar=Mon\.\.Fri \*-\*-\* 06:15:00$/m);
    expect(timer!.content).toMatch(/^Persistent=true$/m);
    expect(timer!.content).toMatch(/^WantedBy=timers.target$/m);
  });

  it('writes two OnCalendar= lines when cron ORs the day fields', () => {
    const [, timer] = renderSchedule(spec({ cron: parseCron('0 3 1 * 0') }), 'systemd');

    expect(timer!.content.match(/^OnCalendar=.*$/gm)).toEqual([
      'OnCalendar=Sun *-*-* 03:00:00',
      'OnCalendar=*-*-01 03:00:00',
    ]);
  });

  it('passes systemd-analyze verify', async () => {
    expect(findTool('systemd-analyze'), 'systemd-analyze is missing: apt-get install systemd').toBeDefined();
    const dir = await mkdtemp(join(tmpdir(), 'dssnap-units-'));
    try {
      const files = renderSchedule(
        spec({ args: ['backup', '--data-dir', '/data/my dss', '--exclude', '/local/100%/'] }),
        'systemd',
      );
      const paths: string[] = [];
      for (const file of files) {
        const path = join(dir, file.path.split('/').pop()!);
        await writeFile(path, file.content);
        paths.push(path);
      }

      const result = await run('systemd-analyze', ['verify', ...paths]);

      expect(`${result.stdout}${result.stderr}`.trim()).toBe('');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('renderSchedule for cron', () => {
  it('writes one cron.d entry run by root under flock, output appended to the log', () => {
    const [entry] = renderSchedule(spec({ args: ['backup', '--exclude', '/local/100%/'] }), 'cron');

    expect(entry!.path).toBe('/etc/cron.d/dssnap-dss');
    expect(entry!.content).toMatch(/^PATH=\/usr\/local\/sbin:.*:\/sbin:\/bin$/m);
    expect(entry!.content).toContain(
      `15 6 * * 1-5 root flock -n /run/lock/dssnap-dss.lock ${process.execPath} ${import.meta.filename} --log-format json backup --exclude /local/100\\%/ >> /var/log/dssnap/dss.log 2>&1\n`,
    );
  });
});

describe('renderSchedule refusals', () => {
  it.each([
    [{ args: [] }, /No command to schedule/],
    [{ args: ['schedule', '--cron', '* * * * *'] }, /cannot schedule 'schedule'/],
    [{ name: 'my dss' }, /Invalid schedule name 'my dss'/],
    [{ name: '../etc' }, /Invalid schedule name/],
  ])('refuses %j', (overrides, message) => {
    expect(() => renderSchedule(spec(overrides), 'systemd')).toThrow(message);
  });
});

describe('systemdQuote', () => {
  it.each([
    ['/data/dss', '/data/dss'],
    ['/data/my dss', '"/data/my dss"'],
    ['100%', '100%%'],
    ['$HOME', '$$HOME'],
    ['say "hi"', '"say \\"hi\\""'],
    ['', '""'],
  ])('%j → %s', (word, quoted) => {
    expect(systemdQuote(word)).toBe(quoted);
  });
});

describe('nameFromDataDir', () => {
  it.each([
    ['/data/dss', 'dss'],
    ['/data/dss.prod/', 'dss-prod'],
    ['/home/dataiku/dss_data', 'dss_data'],
  ])('%s → %s', (dataDir, name) => {
    expect(nameFromDataDir(dataDir)).toBe(name);
  });
});

describe('installSchedule under a root directory', () => {
  let root: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'dssnap-schedule-root-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('writes a cron entry when systemd does not run there, and the log directory', async () => {
    const installed = await installSchedule(spec(), { root });

    expect(installed.init).toBe('cron');
    expect(installed.activated).toBe(false);
    expect(await readFile(join(root, 'etc/cron.d/dssnap-dss'), 'utf8')).toContain('15 6 * * 1-5 root flock');
    expect((await stat(join(root, 'var/log/dssnap'))).isDirectory()).toBe(true);
    expect(await listSchedules(root)).toEqual(['dss']);
  });

  it('replaces the cron entry with units once systemd runs there', async () => {
    await mkdir(join(root, 'run/systemd/system'), { recursive: true });

    const installed = await installSchedule(spec(), { root });

    expect(installed.init).toBe('systemd');
    expect(installed.files.map((f) => f.path)).toEqual([
      join(root, 'etc/systemd/system/dssnap-dss.service'),
      join(root, 'etc/systemd/system/dssnap-dss.timer'),
    ]);
    await expect(stat(join(root, 'etc/cron.d/dssnap-dss'))).rejects.toThrow(/ENOENT/);
  });

  it('plans without writing', async () => {
    const planned = planSchedule(spec({ name: 'other' }), { root, init: 'cron' });

    expect(planned.files[0]!.path).toBe(join(root, 'etc/cron.d/dssnap-other'));
    await expect(stat(planned.files[0]!.path)).rejects.toThrow(/ENOENT/);
  });

  it('removes a schedule, and says which exist when the name is unknown', async () => {
    const removed = await removeSchedule('dss', { root });

    expect(removed).toHaveLength(2);
    expect(await listSchedules(root)).toEqual([]);
    await expect(removeSchedule('dss', { root })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
