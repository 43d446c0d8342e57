/**
 * Snapshot backups of a running DSS on a real btrfs volume (DATA_DIR its own subvolume), copied with
 * real rsync and tar, compared byte for byte with the snapshot they were taken from.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planBackup, runBackup } from '../../src/backup/backup.js';
import { catalogDir, readManifests } from '../../src/catalog/manifest.js';
import { extractArchive } from '../../src/copy/tar-archive.js';
import { startDss } from '../../src/dss/control.js';
import { run } from '../../src/host/exec.js';
import { silentLogger } from '../../src/log.js';
import { leftoverJournals } from '../../src/procedure/journal.js';
import { acquireLock } from '../../src/procedure/lock.js';
import { mutateDataDir } from '../fixtures/generate-data-dir.js';
import { createDssHost, type DssHost } from '../support/dss-host.js';
import { compareTrees, formatDifferences } from '../support/tree-compare.js';

const log = silentLogger();
const excludedByDefault = ['tmp', 'caches', 'data-catalog'];

describe('snapshot backup on btrfs', () => {
  let host: DssHost;
  let firstId: string;
  let retainedSnapshot: string;

  beforeAll(async () => {
    host = await createDssHost({ storage: 'btrfs' });
    await startDss(host.info, { log });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('copies DATA_DIR as it was at the snapshot instant, byte for byte, while DSS keeps running', async () => {
    const result = await runBackup(host.options({ keepSnapshot: true }), { log });

    expect(result.exitCode).toBe(0);
    expect(result.manifest.mode).toBe('snapshot');
    expect(result.manifest.provider).toBe('btrfs');
    expect(result.manifest.quiesce).toBe('none');
    expect(result.manifest.pauseMs).toBeLessThan(1000);
    expect(await host.dssState()).toBe('running');
    const generation = result.manifest.copy!.location;
    expect(generation).toBe(join(host.destination, result.backupId));
    retainedSnapshot = result.manifest.snapshots[0]!.id;
    const differences = await compareTrees(retainedSnapshot, generation, { ignore: excludedByDefault });
    expect(formatDifferences(differences)).toBe(formatDifferences([]));
    for (const folder of excludedByDefault) {
      await expect(stat(join(generation, folder))).rejects.toThrow(/ENOENT/);
    }
    expect(await host.destinationEntries()).toEqual([result.backupId]);
    expect(leftoverJournals(host.stateDir)).toEqual([]);
    firstId = result.backupId;
  });

  it('makes the next run incremental: unchanged files are hard links, changed files new copies', async () => {
    const mutated = await mutateDataDir({ dataDir: host.dataDir, fraction: 0.01, seed: 3 });
    const snapshotsBefore = await host.snapshotEntries();

    const result = await runBackup(host.options(), { log });

    const generation = result.manifest.copy!.location;
    expect(result.manifest.copy!.basedOn).toBe(firstId);
    const unchanged = await stat(join(generation, 'dss-version.json'));
    const unchangedBefore = await stat(join(host.destination, firstId, 'dss-version.json'));
    expect(unchanged.ino).toBe(unchangedBefore.ino);
    const modified = mutated.modified.find((p) => !excludedByDefault.some((f) => p.startsWith(`${f}/`)))!;
    expect((await stat(join(generation, modified))).ino).not.toBe(
      (await stat(join(host.destination, firstId, modified))).ino,
    );
    expect(result.manifest.stats.transferredBytes).toBeLessThan(result.manifest.stats.totalBytes / 5);
    // Not kept: the run's own snapshot is gone, the retained one from the first run stays.
    expect(await host.snapshotEntries()).toEqual(snapshotsBefore);
    expect((await readManifests(catalogDir(host.destination))).map((m) => m.id)).toEqual([
      firstId,
      result.backupId,
    ]);
  });

  it('writes one zstd archive with --format tar that extracts to the snapshot content', async () => {
    const result = await runBackup(host.options({ format: 'tar', keepSnapshot: true }), { log });

    const target = await mkdtemp(join(tmpdir(), 'dssnap-extract-'));
    try {
      expect(result.manifest.copy!.location).toMatch(/\.tar\.zst$/);
      await extractArchive(result.manifest.copy!.location, target);
      const differences = await compareTrees(result.manifest.snapshots[0]!.id, target, {
        ignore: excludedByDefault,
      });
      expect(formatDifferences(differences)).toBe(formatDifferences([]));
    } finally {
      await rm(target, { recursive: true, force: true });
    }
  });

  it('refuses --quiesce fsfreeze on btrfs before changing anything', async () => {
    const before = [await host.destinationEntries(), await host.snapshotEntries()];

    const run = runBackup(host.options({ quiesce: 'fsfreeze' }), { log });

    await expect(run).rejects.toMatchObject({ code: 'UNSUPPORTED', exitCode: 5 });
    await expect(run).rejects.toThrow(/waits for the thaw forever|frozen/);
    expect([await host.destinationEntries(), await host.snapshotEntries()]).toEqual(before);
    expect(await host.dssState()).toBe('running');
  });

  it('refuses a DATA_DIR holding a nested subvolume, which a snapshot would leave out', async () => {
    const nested = join(host.dataDir, 'managed_datasets', 'nested_subvolume');
    await run('btrfs', ['subvolume', 'create', nested]);
    try {
      const before = [await host.destinationEntries(), await host.snapshotEntries()];

      const backup = runBackup(host.options(), { log });

      await expect(backup).rejects.toMatchObject({ code: 'UNSUPPORTED', exitCode: 5 });
      await expect(backup).rejects.toThrow(/nested btrfs subvolumes \(managed_datasets\/nested_subvolume\)/);
      expect([await host.destinationEntries(), await host.snapshotEntries()]).toEqual(before);
    } finally {
      await run('btrfs', ['subvolume', 'delete', nested]);
    }
  });

  it('refuses a second run while another holds the lock, naming the run and its pid', async () => {
    const held = acquireLock(host.stateDir, host.dataDir, 'other-run-1');
    const before = await host.snapshotEntries();
    try {
      const run = runBackup(host.options(), { log });

      await expect(run).rejects.toMatchObject({ code: 'LOCKED', exitCode: 4 });
      await expect(run).rejects.toThrow(new RegExp(`locked by run other-run-1 \\(pid ${process.pid}\\)`));
      expect(await host.snapshotEntries()).toEqual(before);
    } finally {
      held.lock.release();
    }
  });

  it('plans every step without taking any', async () => {
    const before = [await host.destinationEntries(), await host.snapshotEntries()];

    const plan = await planBackup(host.options(), { log });

    expect(plan.steps.map((s) => `${s.action}:${s.kind}`)).toEqual([
      'do:check-jobs',
      'do:create-snapshots',
      'do:wait-snapshots',
      'do:expose-snapshot',
      'do:copy',
      'undo:expose-snapshot',
      'undo:create-snapshots',
      // The file index (sha256 of every file, for verify) is built from the finished copy.
      'do:hash-files',
    ]);
    expect([await host.destinationEntries(), await host.snapshotEntries()]).toEqual(before);
  });
});
