/**
 * Pristine restores of real backups (rsync generation and zstd archive of a generated DATA_DIR owned by
 * nobody): the restored DATA_DIR equals the backup byte for byte (owners, modes, symlinks, hard links,
 * xattrs), the live one is moved aside untouched, DSS is started; bad input is refused with nothing
 * changed, and a damaged backup is caught before the live DATA_DIR is touched.
 */
import { existsSync } from 'node:fs';
import { open, readdir, rm, stat, truncate } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { resolveOptions } from '../../src/config.js';
import { startDss, stopDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { leftoverJournals } from '../../src/procedure/journal.js';
import { copyTree } from '../../src/restore/materialize.js';
import { restoreOptionsSchema } from '../../src/restore/options.js';
import { runRestore } from '../../src/restore/restore.js';
import { mutateDataDir } from '../fixtures/generate-data-dir.js';
import { createDssHost, type DssHost } from '../support/dss-host.js';
import { compareTrees, formatDifferences } from '../support/tree-compare.js';

const log = silentLogger();
/** What a running fake DSS writes by itself, and what the backups exclude by default. */
const runtimeFiles = ['run/backend.log', 'run/supervisord.pid'];
const excluded = ['tmp', 'caches', 'data-catalog'];

describe('pristine restore', () => {
  let host: DssHost;
  let generationId: string;
  let archiveId: string;
  let reference: string;

  beforeAll(async () => {
    host = await createDssHost({ storage: 'plain' });
    generationId = (await runBackup(host.options({ mode: 'cold', force: true }), { log })).backupId;
    archiveId = (await runBackup(host.options({ mode: 'cold', force: true, format: 'tar' }), { log }))
      .backupId;
    await mutateDataDir({ dataDir: host.dataDir, fraction: 0.05, seed: 7 });
    reference = join(dirname(host.destination), 'reference');
  });
  afterAll(async () => {
    await host?.dispose();
  });

  const options = (overrides: Record<string, unknown>) =>
    resolveOptions(restoreOptionsSchema, {
      flags: {
        to: host.destination,
        dataDir: host.dataDir,
        stateDir: host.stateDir,
        mountRoot: host.mountRoot,
        ...overrides,
      },
    });

  /** The live DATA_DIR as it is now, to prove later that it was moved aside untouched. */
  async function snapshotLive(): Promise<void> {
    await rm(reference, { recursive: true, force: true });
    await copyTree(host.dataDir, reference);
  }

  async function parentEntries(): Promise<string[]> {
    return (await readdir(dirname(host.dataDir))).sort();
  }

  it('restores a generation byte for byte, keeps the live DATA_DIR aside untouched, and starts DSS', async () => {
    await stopDss(host.info, { log });
    await snapshotLive();

    const result = await runRestore(options({ backupId: generationId }), { log });

    expect(result.exitCode).toBe(0);
    expect(result.strategy).toBe('rename');
    expect(result.verifiedEntries).toBeGreaterThan(900);
    expect(result.dssStarted).toBe(true);
    expect(await host.dssState()).toBe('running');
    await stopDss(host.info, { log });
    const restored = await compareTrees(join(host.destination, generationId), host.dataDir, {
      ignore: runtimeFiles,
    });
    expect(formatDifferences(restored.filter((d) => !(d.path === 'run' && d.kind === 'mtime')))).toBe('');
    expect(result.movedAside).toMatch(/\.before-restore-\d{8}T\d{6}Z$/);
    const aside = await compareTrees(reference, result.movedAside!);
    expect(formatDifferences(aside)).toBe('');
    expect(leftoverJournals(host.stateDir)).toEqual([]);
    expect((await parentEntries()).filter((n) => n.startsWith('.dssnap-restore'))).toEqual([]);
    await rm(result.movedAside!, { recursive: true, force: true });
  });

  it('restores an archive onto a running DSS with --force: stopped, replaced, started again', async () => {
    await startDss(host.info, { log });

    const result = await runRestore(options({ backupId: archiveId, force: true }), { log });

    expect(result.exitCode).toBe(0);
    expect(result.steps.map((s) => s.kind)).toEqual([
      'stage-copy',
      'verify-restored',
      'check-jobs',
      'stop-dss',
      'swap-data-dir',
      'start-dss',
    ]);
    expect(await host.dssState()).toBe('running');
    await stopDss(host.info, { log });
    const aside = result.movedAside!;
    const restored = await compareTrees(aside, host.dataDir, { ignore: [...runtimeFiles, ...excluded] });
    // The aside copy is the generation restored just before: the archive holds the same tree.
    expect(formatDifferences(restored.filter((d) => !(d.path === 'run' && d.kind === 'mtime')))).toBe('');
    await rm(aside, { recursive: true, force: true });
  });

  it.each([
    [
      'an unknown backup id, listing the nearest ones',
      () => ({ backupId: `${generationId.slice(0, 10)}X` }),
      /No backup '.*X'/,
      3,
    ],
    [
      'a running DSS without --dss-url or --force',
      () => ({ backupId: generationId }),
      /DSS is running on/,
      5,
    ],
    [
      'another path without --install-dir',
      () => ({ backupId: generationId, dataDir: `${host.dataDir}-elsewhere` }),
      /needs the DSS installer/,
      3,
    ],
    ['neither a backup id nor --snapshot', () => ({}), /Name one thing to restore/, 3],
  ])('refuses %s, changing nothing', async (_what, overrides, message, exitCode) => {
    await startDss(host.info, { log });
    const before = await parentEntries();
    const pid = (await stat(join(host.dataDir, 'run/supervisord.pid'))).mtimeMs;

    const restore = runRestore(options(overrides()), { log });

    await expect(restore).rejects.toThrow(message);
    await expect(restore).rejects.toMatchObject({ exitCode });
    expect(await parentEntries()).toEqual(before);
    expect(await host.dssState()).toBe('running');
    expect((await stat(join(host.dataDir, 'run/supervisord.pid'))).mtimeMs).toBe(pid);
  });

  it('names the nearest backup ids when the id is unknown', async () => {
    const restore = runRestore(options({ backupId: `${generationId.slice(0, 12)}` }), { log });

    await expect(restore).rejects.toMatchObject({
      code: 'NOT_FOUND',
      hint: expect.stringContaining(generationId),
    });
  });

  it('catches a damaged generation before the live DATA_DIR is touched', async () => {
    await stopDss(host.info, { log });
    await snapshotLive();
    const victim = join(host.destination, generationId, 'config/general-settings.json');
    const file = await open(victim, 'r+');
    await file.write(Buffer.from('X'), 0, 1, 3);
    await file.close();
    const removed = join(host.destination, generationId, 'install.ini');
    await rm(removed);
    try {
      const restore = runRestore(options({ backupId: generationId }), { log });

      await expect(restore).rejects.toMatchObject({ code: 'BACKUP_INVALID', exitCode: 1 });
      await expect(restore).rejects.toThrow(
        /1 missing \(install\.ini\).*1 changed \(config\/general-settings\.json: content\)/,
      );
      expect(formatDifferences(await compareTrees(reference, host.dataDir))).toBe('');
      expect((await parentEntries()).filter((n) => n !== 'dss_data')).toEqual([
        'backups',
        'reference',
        'state',
      ]);
      expect(await host.dssState()).toBe('stopped');
      expect(leftoverJournals(host.stateDir)).toEqual([]);
    } finally {
      await rm(join(host.destination, generationId), { recursive: true, force: true });
    }
  });

  it('catches a truncated archive before the live DATA_DIR is touched', async () => {
    const archive = join(host.destination, `${archiveId}.tar.zst`);
    await truncate(archive, Math.floor((await stat(archive)).size / 2));

    const restore = runRestore(options({ backupId: archiveId }), { log });

    await expect(restore).rejects.toMatchObject({ code: 'BACKUP_INVALID' });
    expect(formatDifferences(await compareTrees(reference, host.dataDir))).toBe('');
    expect(existsSync(archive)).toBe(true);
  });
});
