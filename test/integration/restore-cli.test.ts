/**
 * The new commands as a user runs them (the built CLI): restore's summary and exit codes, and
 * `schedule` writing, printing and removing a systemd timer or a cron entry under a test root — the
 * written unit files checked with `systemd-analyze verify`.
 */
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { stopDss } from '../../src/dss/control.js';
import { run } from '../../src/host/exec.js';
import { silentLogger } from '../../src/log.js';
import { cliPath, dssnap } from '../support/cli.js';
import { createDssHost, type DssHost } from '../support/dss-host.js';

const log = silentLogger();

describe('dssnap restore (CLI)', () => {
  let host: DssHost;
  let backupId: string;

  beforeAll(async () => {
    host = await createDssHost({ storage: 'plain' });
    backupId = (await runBackup(host.options({ mode: 'cold', force: true }), { log })).backupId;
    await stopDss(host.info, { log });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('restores and prints where the previous DATA_DIR went', async () => {
    const result = await dssnap([
      'restore',
      backupId,
      '--to',
      host.destination,
      '--data-dir',
      host.dataDir,
      '--state-dir',
      host.stateDir,
      '--no-start',
    ]);

    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`Restored ${backupId} into ${host.dataDir}`);
    expect(result.stdout).toMatch(/previous {3}kept aside at .*\.before-restore-/);
    expect(result.stdout).toMatch(/checked {4}\d+ entries match the backup's file index/);
    expect(result.stdout).toContain('DSS        not started (--no-start)');
    const aside = result.stdout.match(/kept aside at (\S+)/)![1]!;
    await rm(aside, { recursive: true, force: true });
  });

  it('exits 3 with the nearest ids for an unknown backup', async () => {
    const result = await dssnap([
      'restore',
      'nope',
      '--to',
      host.destination,
      '--data-dir',
      host.dataDir,
      '--state-dir',
      host.stateDir,
    ]);

    expect(result.exitCode).toBe(3);
    expect(result.stderr).toContain(`hint: Nearest backup ids: ${backupId}`);
  });
});

describe('dssnap schedule (CLI)', () => {
  let root: string;
  const schedule = (...args: string[]) => dssnap(['schedule', '--root', root, ...args]);

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'dssnap-schedule-cli-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('writes a cron.d entry where systemd does not run, and prints the next five runs', async () => {
    const result = await schedule(
      '--cron',
      '15 6 * * 1-5',
      '--',
      'backup',
      '--data-dir',
      '/data/dss',
      '--to',
      '/backups/dss',
    );

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain("Wrote schedule 'dss' (cron): 15 6 * * 1-5");
    expect(result.stdout.match(/^ {2}(Mon|Tue|Wed|Thu|Fri) .* 06:15:00/gm)).toHaveLength(5);
    const entry = await readFile(join(root, 'etc/cron.d/dssnap-dss'), 'utf8');
    expect(entry).toContain(
      `15 6 * * 1-5 root flock -n /run/lock/dssnap-dss.lock ${process.execPath} ${cliPath} --log-format json backup --data-dir /data/dss --to /backups/dss >> /var/log/dssnap/dss.log 2>&1`,
    );
  });

  it('replaces it with a systemd service and timer once systemd runs, which systemd-analyze verify accepts', async () => {
    await mkdir(join(root, 'run/systemd/system'), { recursive: true });

    const result = await schedule(
      '--cron',
      '0 2 * * *',
      '--',
      'backup',
      '--data-dir',
      '/data/dss',
      '--to',
      '/backups/dss',
    );

    expect(result.exitCode).toBe(0);
    expect(await readdir(join(root, 'etc/cron.d'))).toEqual([]);
    const units = join(root, 'etc/systemd/system');
    expect((await readdir(units)).sort()).toEqual(['dssnap-dss.service', 'dssnap-dss.timer']);
    expect(await readFile(join(units, 'dssnap-dss.timer'), 'utf8')).toContain('OnCalendar=*-*-* 02:00:00');
    const verified = await run('systemd-analyze', [
      'verify',
      join(units, 'dssnap-dss.service'),
      join(units, 'dssnap-dss.timer'),
    ]);
    expect(`${verified.stdout}${verified.stderr}`.trim()).toBe('');
  });

  it('prints the unit files with --dry-run and writes nothing', async () => {
    const result = await schedule(
      '--name',
      'other',
      '--cron',
      '@weekly',
      '--dry-run',
      '--',
      'prune',
      '--to',
      '/b',
      '--keep-daily',
      '7',
    );

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`# ${join(root, 'etc/systemd/system/dssnap-other.timer')}`);
    expect(result.stdout).toContain('OnCalendar=Sun *-*-* 00:00:00');
    expect(await readdir(join(root, 'etc/systemd/system'))).not.toContain('dssnap-other.timer');
  });

  it.each([
    [
      ['--cron', '61 * * * *', '--', 'backup', '--data-dir', '/d'],
      /Invalid cron expression '61 \* \* \* \*'/,
    ],
    [
      ['--cron', '@daily', '--', 'backup', '--data-dir', '/d', '--formt', 'tar'],
      /unknown option\(s\): --formt/,
    ],
    [['--cron', '@daily', '--', 'restore', 'x'], /cannot schedule 'restore'/],
    [['--cron', '@daily', '--', 'prune', '--keep-daily', '1'], /Give the schedule a --name/],
    [['--remove', '--name', 'ghost'], /No schedule named 'ghost'.*\n.*Existing schedules: dss/],
  ])('refuses %j with exit 3, writing nothing', async (args, message) => {
    const before = await readdir(join(root, 'etc/systemd/system'));

    const result = await schedule(...args);

    expect(result.exitCode).toBe(3);
    expect(result.stderr).toMatch(message);
    expect(await readdir(join(root, 'etc/systemd/system'))).toEqual(before);
  });

  it('lists and removes a schedule', async () => {
    const listed = await schedule('--list');

    const removed = await schedule('--remove', '--name', 'dss');

    expect(listed.stdout).toBe('dss');
    expect(removed.exitCode).toBe(0);
    expect(await readdir(join(root, 'etc/systemd/system'))).toEqual([]);
  });
});

describe('dssnap --help', () => {
  it('lists the new commands', async () => {
    const result = await dssnap(['--help']);

    for (const command of ['restore', 'verify', 'prune', 'schedule'])
      expect(result.stdout).toContain(`dssnap ${command}`);
  });
});
