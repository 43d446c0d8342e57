/**
 * Restores from retained snapshots through the provider contract (btrfs on a real loop volume, and the
 * fake provider), and restores onto a DATA_DIR that is a mount point (its content copied aside to the
 * parent filesystem, or the restore refused when that filesystem has no room).
 */
import { mkdir, readdir, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { resolveOptions } from '../../src/config.js';
import { dssStatus, stopDss } from '../../src/dss/control.js';
import { inspectDataDir } from '../../src/dss/layout.js';
import { run } from '../../src/host/exec.js';
import { silentLogger } from '../../src/log.js';
import { leftoverJournals } from '../../src/procedure/journal.js';
import { copyTree } from '../../src/restore/materialize.js';
import { restoreOptionsSchema } from '../../src/restore/options.js';
import { runRestore } from '../../src/restore/restore.js';
import { createFixtureRoot, generateDataDir, mutateDataDir } from '../fixtures/generate-data-dir.js';
import { dssnap } from '../support/cli.js';
import { createDssHost, type DssHost, nobody } from '../support/dss-host.js';
import { createLoopVolume, type LoopVolume } from '../support/loop-volume.js';
import { compareTrees, formatDifferences } from '../support/tree-compare.js';

const log = silentLogger();
const runtimeFiles = ['run/backend.log', 'run/supervisord.pid'];
const withoutRunMtime = (d: { path: string; kind: string }) => !(d.path === 'run' && d.kind === 'mtime');

describe('restore from a retained btrfs snapshot', () => {
  let host: DssHost;
  let snapshotId: string;
  let backupId: string;

  beforeAll(async () => {
    host = await createDssHost({ storage: 'btrfs' });
    const result = await runBackup(host.options({ copy: 'none', keepSnapshot: true, to: undefined }), {
      log,
    });
    snapshotId = result.manifest.snapshots[0]!.id;
    backupId = result.backupId;
    await mutateDataDir({ dataDir: host.dataDir, fraction: 0.05, seed: 11 });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  const options = (overrides: Record<string, unknown>) =>
    resolveOptions(restoreOptionsSchema, {
      flags: {
        dataDir: host.dataDir,
        stateDir: host.stateDir,
        mountRoot: host.mountRoot,
        snapshotDir: host.snapshotDir,
        ...overrides,
      },
    });

  it('restores --snapshot ID --provider btrfs: DATA_DIR equals the snapshot and is still a subvolume', async () => {
    const result = await runRestore(options({ snapshot: snapshotId, provider: 'btrfs', start: false }), {
      log,
    });

    expect(result.exitCode).toBe(0);
    expect(result.source).toBe(`btrfs snapshot ${snapshotId}`);
    expect(formatDifferences((await compareTrees(snapshotId, host.dataDir)).filter(withoutRunMtime))).toBe(
      '',
    );
    expect((await stat(host.dataDir)).ino).toBe(256);
    // Snapshots keep working on the restored DATA_DIR.
    const next = await runBackup(host.options({ copy: 'none', keepSnapshot: true, to: undefined }), { log });
    expect(next.exitCode).toBe(0);
    await run('btrfs', ['subvolume', 'delete', result.movedAside!]);
    expect(leftoverJournals(host.stateDir)).toEqual([]);
  });

  it('restores a snapshot-only backup by its backup id, through its provider', async () => {
    await writeFile(join(host.dataDir, 'config/after-backup.json'), '{}\n');

    const result = await runRestore(options({ backupId, start: false }), { log });

    expect(result.backupId).toBe(backupId);
    expect(formatDifferences((await compareTrees(snapshotId, host.dataDir)).filter(withoutRunMtime))).toBe(
      '',
    );
    await run('btrfs', ['subvolume', 'delete', result.movedAside!]);
  });

  it('refuses an unknown snapshot id, naming the nearest', async () => {
    const restore = runRestore(options({ snapshot: `${snapshotId}-nope`, provider: 'btrfs' }), { log });

    await expect(restore).rejects.toMatchObject({
      code: 'NOT_FOUND',
      hint: expect.stringContaining(snapshotId),
    });
  });
});

describe('restore from a retained fake-provider snapshot', () => {
  let host: DssHost;

  beforeAll(async () => {
    host = await createDssHost({ storage: 'plain' });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('exposes, copies into DATA_DIR and releases through the provider contract', async () => {
    const backup = await runBackup(
      host.options({ mode: 'snapshot', provider: 'fake', copy: 'none', keepSnapshot: true, to: undefined }),
      { log },
    );
    const snapshot = backup.manifest.snapshots[0]!;
    const reference = join(host.stateDir, 'fake-snapshots', snapshot.id);
    await mutateDataDir({ dataDir: host.dataDir, fraction: 0.05, seed: 5 });

    const result = await runRestore(
      resolveOptions(restoreOptionsSchema, {
        flags: {
          snapshot: snapshot.id,
          provider: 'fake',
          dataDir: host.dataDir,
          stateDir: host.stateDir,
          start: false,
        },
      }),
      { log },
    );

    expect(result.steps.map((s) => s.kind)).toEqual([
      'expose-snapshot',
      'stage-copy',
      'verify-restored',
      'swap-data-dir',
    ]);
    expect(formatDifferences((await compareTrees(reference, host.dataDir)).filter(withoutRunMtime))).toBe('');
    const { readFakeState } = await import('../../providers/fake/index.js');
    const state = await readFakeState(host.stateDir);
    expect(state.calls.map((c) => c.method)).toEqual(expect.arrayContaining(['expose', 'ensureReleased']));
    expect(Object.keys(state.exposures)).toEqual([]);
  });
});

describe('restore onto a DATA_DIR that is a mount point', () => {
  let root: string;
  const volumes: LoopVolume[] = [];
  const mounts: string[] = [];

  beforeAll(async () => {
    root = await createFixtureRoot('dssnap-mountpoint-');
  });
  afterAll(async () => {
    for (const mount of mounts.reverse()) {
      const info = await inspectDataDir(mount).catch(() => undefined);
      if (info) await stopDss(info).catch(() => undefined);
      await run('umount', [mount]).catch(() => run('umount', ['-l', mount]).catch(() => undefined));
    }
    for (const volume of volumes) await volume.dispose();
    await rm(root, { recursive: true, force: true });
  });

  /** A parent filesystem of `parentMb`, and DATA_DIR on its own filesystem mounted inside it. */
  async function mountedDataDir(
    name: string,
    parentMb: number,
  ): Promise<{ parent: string; dataDir: string }> {
    const parentVolume = await createLoopVolume({ fsType: 'ext4', sizeMb: parentMb });
    const dataVolume = await createLoopVolume({ fsType: 'ext4', sizeMb: 96 });
    volumes.push(dataVolume, parentVolume);
    const parent = join(root, name);
    await mkdir(parent);
    await run('mount', ['--bind', parentVolume.mountPoint, parent]);
    mounts.push(parent);
    const dataDir = join(parent, 'dss_data');
    await mkdir(dataDir, { mode: 0o755 });
    await run('mount', ['--bind', dataVolume.mountPoint, dataDir]);
    mounts.push(dataDir);
    await rmdir(join(dataDir, 'lost+found'));
    await generateDataDir({ dir: dataDir, preset: 'tiny', seed: 3, owner: nobody });
    return { parent, dataDir };
  }

  it('copies the content aside to the parent filesystem, restores in place, and keeps the copy', async () => {
    const { parent, dataDir } = await mountedDataDir('roomy', 128);
    const stateDir = join(root, 'state-roomy');
    const destination = join(root, 'backups-roomy');
    const options = resolveOptions((await import('../../src/config.js')).backupOptionsSchema, {
      flags: { dataDir, to: destination, stateDir, mode: 'cold', force: true },
    });
    const backupId = (await runBackup(options, { log })).backupId;
    await stopDss(await inspectDataDir(dataDir));
    await mutateDataDir({ dataDir, fraction: 0.05, seed: 9 });
    const reference = join(root, 'reference');
    await copyTree(dataDir, reference);

    const result = await runRestore(
      resolveOptions(restoreOptionsSchema, {
        flags: { backupId, to: destination, dataDir, stateDir, force: true },
      }),
      { log },
    );

    expect(result.strategy).toBe('copy-aside');
    expect(result.steps.map((s) => s.kind)).toContain('verify-backup');
    expect(await dssStatus(await inspectDataDir(dataDir))).toBe('running');
    await stopDss(await inspectDataDir(dataDir));
    const restored = await compareTrees(join(destination, backupId), dataDir, {
      ignore: [...runtimeFiles, 'lost+found'],
    });
    expect(formatDifferences(restored.filter((d) => d.path !== '.' && withoutRunMtime(d)))).toBe('');
    expect(result.movedAside).toBe(
      join(parent, (await readdir(parent)).find((n) => n.includes('before-restore'))!),
    );
    expect(formatDifferences(await compareTrees(reference, result.movedAside!))).toBe('');
  });

  it('refuses when the parent filesystem has no room for the copy aside, changing nothing', async () => {
    const { parent, dataDir } = await mountedDataDir('cramped', 8);
    const stateDir = join(root, 'state-cramped');
    const destination = join(root, 'backups-cramped');
    const backupId = (
      await runBackup(
        resolveOptions((await import('../../src/config.js')).backupOptionsSchema, {
          flags: { dataDir, to: destination, stateDir, mode: 'cold', force: true },
        }),
        { log },
      )
    ).backupId;
    await stopDss(await inspectDataDir(dataDir));
    const before = await readdir(parent);

    const result = await dssnap([
      'restore',
      backupId,
      '--to',
      destination,
      '--data-dir',
      dataDir,
      '--state-dir',
      stateDir,
      '--force',
    ]);

    expect(result.exitCode).toBe(5);
    expect(result.stderr).toMatch(/a mount point, which cannot be renamed/);
    expect(await readdir(parent)).toEqual(before);
    expect(leftoverJournals(stateDir)).toEqual([]);
    const differences = await compareTrees(join(destination, backupId), dataDir, {
      ignore: ['tmp', 'caches', 'data-catalog', 'lost+found', ...runtimeFiles],
    });
    expect(formatDifferences(differences.filter((d) => d.path !== '.' && withoutRunMtime(d)))).toBe('');
  });
});
