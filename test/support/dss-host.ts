/**
 * A DSS host for integration tests: a generated DATA_DIR owned by `nobody` (bin/dss refuses root, as
 * the real one does), on a real btrfs loop volume as its own subvolume or in a plain temp dir, with a
 * backup destination and a state dir on another filesystem.
 */
import { chmod, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BackupOptions, backupOptionsSchema, resolveOptions } from '../../src/config.js';
import { dssStatus, stopDss } from '../../src/dss/control.js';
import { type DataDirInfo, inspectDataDir } from '../../src/dss/layout.js';
import { type GenerateDataDirOptions, generateDataDir } from '../fixtures/generate-data-dir.js';
import { createLoopVolume, type LoopVolume } from './loop-volume.js';
import { requireRoot } from './require-root.js';

export const nobody = { uid: 65534, gid: 65534 };

export interface DssHost {
  dataDir: string;
  info: DataDirInfo;
  /** Backups go here (a temp dir on the root filesystem, not on the DATA_DIR volume). */
  destination: string;
  stateDir: string;
  mountRoot: string;
  /** btrfs only. */
  snapshotDir?: string;
  volume?: LoopVolume;
  /** Options for a backup of this host, with `overrides` applied as flags would be. */
  options(overrides?: Record<string, unknown>): BackupOptions;
  /** Names in the destination (generations, archives, partials), sorted; the catalog dir excluded. */
  destinationEntries(): Promise<string[]>;
  /** Names in the btrfs snapshot dir (snapshots and sidecars), sorted. */
  snapshotEntries(): Promise<string[]>;
  dssState(): Promise<'running' | 'stopped'>;
  dispose(): Promise<void>;
}

export interface DssHostOptions {
  storage: 'btrfs' | 'plain';
  generate?: Omit<GenerateDataDirOptions, 'dir'>;
  volumeSizeMb?: number;
}

export async function createDssHost(options: DssHostOptions): Promise<DssHost> {
  requireRoot();
  const work = await mkdtemp(join(tmpdir(), 'dssnap-host-'));
  await chmod(work, 0o755);
  let volume: LoopVolume | undefined;
  let dataDir: string;
  let snapshotDir: string | undefined;
  if (options.storage === 'btrfs') {
    volume = await createLoopVolume({
      fsType: 'btrfs',
      subvolume: 'dss_data',
      sizeMb: options.volumeSizeMb ?? 512,
    });
    await chmod(join(volume.mountPoint, '..'), 0o755);
    await chmod(volume.mountPoint, 0o755);
    dataDir = volume.subvolumePath!;
    snapshotDir = join(volume.mountPoint, '.dssnap-snapshots');
  } else {
    dataDir = join(work, 'dss_data');
  }
  let info: Awaited<ReturnType<typeof inspectDataDir>>;
  try {
    await generateDataDir({ dir: dataDir, preset: 'tiny', seed: 1, owner: nobody, ...options.generate });
    info = await inspectDataDir(dataDir);
  } catch (error) {
    // The caller gets no dispose() from a failed set-up: release the loop volume and temp dir here.
    await volume?.dispose().catch(() => undefined);
    await rm(work, { recursive: true, force: true });
    throw error;
  }
  const destination = join(work, 'backups');
  const stateDir = join(work, 'state');
  const mountRoot = join(work, 'mnt');
  await mkdir(destination);

  return {
    dataDir: info.path,
    info,
    destination,
    stateDir,
    mountRoot,
    ...(snapshotDir ? { snapshotDir } : {}),
    ...(volume ? { volume } : {}),
    options: (overrides = {}) =>
      resolveOptions(backupOptionsSchema, {
        flags: {
          dataDir: info.path,
          to: destination,
          stateDir,
          mountRoot,
          ...(snapshotDir ? { snapshotDir } : { mode: 'cold' }),
          ...overrides,
        },
      }),
    destinationEntries: async () => (await readdir(destination)).filter((n) => n !== '.dssnap').sort(),
    snapshotEntries: async () => (snapshotDir ? (await readdir(snapshotDir).catch(() => [])).sort() : []),
    dssState: () => dssStatus(info),
    dispose: async () => {
      await stopDss(info).catch(() => undefined);
      await volume?.dispose();
      await rm(work, { recursive: true, force: true });
    },
  };
}
