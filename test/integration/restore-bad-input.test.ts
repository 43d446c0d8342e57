/**
 * The restore refusals of issue 7 as a user meets them — the built CLI, its exit code and message — each
 * followed by proof that nothing changed: the live DATA_DIR is the same tree, DSS is in the state it was
 * in (a running DSS never stopped), nothing new beside DATA_DIR, no journal left, the backups untouched.
 * (The other cases run elsewhere: no room for the copy aside in restore-snapshot, an unreachable Govern
 * database in govern, an invalid cron expression in restore-cli.)
 */
import { open, readdir, rename, rm, stat, truncate } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { startDss, stopDss } from '../../src/dss/control.js';
import { run } from '../../src/host/exec.js';
import { silentLogger } from '../../src/log.js';
import { leftoverJournals } from '../../src/procedure/journal.js';
import { copyTree } from '../../src/restore/materialize.js';
import { createInstallDir, type FakeInstallDir } from '../fixtures/install-dir.js';
import { dssnap } from '../support/cli.js';
import { createDssHost, type DssHost } from '../support/dss-host.js';
import { compareTrees, type Difference, formatDifferences } from '../support/tree-compare.js';

const log = silentLogger();
const runtimeFiles = ['run/backend.log', 'run/supervisord.pid'];
/** Starting DSS writes into run/: its mtime is the one difference a start makes. */
const notRunMtime = (d: Difference) => !(d.path === 'run' && d.kind === 'mtime');

describe('dssnap restore refusals (CLI): a clear error, its exit code, nothing changed', () => {
  let host: DssHost;
  let sound: string;
  let damaged: string;
  let truncated: string;
  let older: FakeInstallDir;
  let reference: string;
  let work: string;

  beforeAll(async () => {
    host = await createDssHost({ storage: 'plain' });
    work = dirname(host.destination);
    sound = (await runBackup(host.options({ mode: 'cold', force: true }), { log })).backupId;
    damaged = (await runBackup(host.options({ mode: 'cold', force: true }), { log })).backupId;
    truncated = (await runBackup(host.options({ mode: 'cold', force: true, format: 'tar' }), { log }))
      .backupId;
    // A flipped byte in one generation, half an archive in the other: caught before DATA_DIR is touched.
    // The file is a hard link to the sound generation's: give the damaged one its own inode first.
    const victim = join(host.destination, damaged, 'config/general-settings.json');
    await run('cp', ['-p', victim, `${victim}.own`]);
    await rename(`${victim}.own`, victim);
    const file = await open(victim, 'r+');
    await file.write(Buffer.from('#'), 0, 1, 2);
    await file.close();
    const archive = join(host.destination, `${truncated}.tar.zst`);
    await truncate(archive, Math.floor((await stat(archive)).size / 2));
    older = await createInstallDir({ path: join(work, 'dataiku-dss-13.3.0'), productVersion: '13.3.0' });
    await stopDss(host.info, { log });
    reference = join(work, 'reference');
    await copyTree(host.dataDir, reference);
  });
  afterAll(async () => {
    await stopDss(host.info, { log }).catch(() => undefined);
    await host?.dispose();
  });

  const restore = (...args: string[]) =>
    dssnap([
      'restore',
      ...args,
      '--to',
      host.destination,
      '--state-dir',
      host.stateDir,
      ...(args.includes('--data-dir') ? [] : ['--data-dir', host.dataDir]),
    ]);

  it.each([
    {
      what: 'an unknown backup id, naming the nearest ones',
      args: () => [`${sound.slice(0, 10)}X`],
      dss: 'stopped' as const,
      exitCode: 3,
      message: () => new RegExp(`No backup '.*X'[\\s\\S]*hint: Nearest backup ids: .*${sound}`),
    },
    {
      what: 'a running DSS that it was not allowed to stop (no --dss-url, no --force)',
      args: () => [sound],
      dss: 'running' as const,
      exitCode: 5,
      message: () => /DSS is running on .*no --dss-url was given[\s\S]*hint: Give --dss-url/,
    },
    {
      what: 'a backup from a newer DSS than the target installation',
      args: () => [sound, '--data-dir', join(work, 'elsewhere'), '--install-dir', older.path],
      dss: 'stopped' as const,
      exitCode: 5,
      message: () => /from DSS 13\.4\.2.*newer than the installation .*DSS 13\.3\.0/,
    },
    {
      what: 'a damaged generation (a flipped byte), even with DSS running and --force',
      args: () => [damaged, '--force'],
      dss: 'running' as const,
      exitCode: 1,
      message: () => /1 changed \(config\/general-settings\.json: content\)[\s\S]*was not touched/,
    },
    {
      what: 'a truncated archive, even with DSS running and --force',
      args: () => [truncated, '--force'],
      dss: 'running' as const,
      exitCode: 1,
      message: () => /The archive .*\.tar\.zst cannot be read: [\s\S]*hint: The archive is damaged/,
    },
  ])('refuses $what', async ({ args, dss, exitCode, message }) => {
    if (dss === 'running') await startDss(host.info, { log });
    const pidFile = join(host.dataDir, 'run/supervisord.pid');
    const pidBefore = dss === 'running' ? (await stat(pidFile)).mtimeMs : undefined;
    const parentBefore = (await readdir(dirname(host.dataDir))).sort();
    const workBefore = (await readdir(work)).sort();
    const backupsBefore = (await readdir(host.destination)).sort();

    const result = await restore(...args());

    expect(result.exitCode).toBe(exitCode);
    expect(result.stderr).toMatch(message());
    expect(result.stdout).toBe('');
    expect(await host.dssState()).toBe(dss);
    if (pidBefore !== undefined) expect((await stat(pidFile)).mtimeMs).toBe(pidBefore);
    if (dss === 'running') await stopDss(host.info, { log });
    expect((await readdir(dirname(host.dataDir))).sort()).toEqual(parentBefore);
    expect((await readdir(work)).sort()).toEqual(workBefore);
    expect((await readdir(host.destination)).sort()).toEqual(backupsBefore);
    expect(await older.calls()).toEqual([]);
    expect(leftoverJournals(host.stateDir)).toEqual([]);
    const live = await compareTrees(reference, host.dataDir, { ignore: runtimeFiles });
    expect(formatDifferences(live.filter(notRunMtime))).toBe('');
  });

  it('still restores the sound backup afterwards (the refusals left no lock or journal behind)', async () => {
    const result = await restore(sound, '--no-start');

    expect(result).toMatchObject({ exitCode: 0, stderr: '' });
    const aside = result.stdout.match(/kept aside at (\S+)/)![1]!;
    const kept = await compareTrees(reference, aside, { ignore: runtimeFiles });
    expect(formatDifferences(kept.filter(notRunMtime))).toBe('');
    await rm(aside, { recursive: true, force: true });
  });
});
