/**
 * Preflight: every check that can refuse a run, done before anything changes (no lock, no journal,
 * no stop, no snapshot). `dssnap plan` shows its result; `backup` acts on it.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { catalogDir, type Manifest, readManifests } from '../catalog/manifest.js';
import type { BackupOptions } from '../config.js';
import { measureExclusions, type ResolvedExclusions, resolveExclusions } from '../dss/exclusions.js';
import { readApiKey, waitForNoRunningWork } from '../dss/jobs.js';
import { type DataDirInfo, inspectDataDir } from '../dss/layout.js';
import { measureTree } from '../dss/tree-size.js';
import { parseDuration } from '../duration.js';
import { DssnapError } from '../errors.js';
import { requireTool } from '../host/exec.js';
import { mountOf, mountsBelow } from '../host/mounts.js';
import type { Logger } from '../log.js';
import { detectProvider, loadProvider } from '../provider/registry.js';
import { withRetries } from '../provider/retry.js';
import type { QuiesceMode, SnapshotProvider, Volume } from '../provider/types.js';
import { checkDestination, checkFreeSpace, type Destination } from './destination.js';

export interface Preflight {
  dataDir: DataDirInfo;
  mode: 'snapshot' | 'cold';
  provider?: SnapshotProvider;
  providerSettings?: Record<string, unknown>;
  quiesce: QuiesceMode;
  volumes: Volume[];
  destination?: Destination;
  previousGeneration?: string;
  exclusions: ResolvedExclusions;
  /** Size of what will be copied (DATA_DIR less exclusions), when measured. */
  estimatedBytes?: number;
  /** Refuses (JOBS_RUNNING) while DSS jobs or scenarios run, unless --force; waits up to --wait-for-jobs. */
  checkJobs: (signal: AbortSignal) => Promise<void>;
}

export interface PreflightDeps {
  log: Logger;
  env: NodeJS.ProcessEnv;
}

export async function preflight(options: BackupOptions, deps: PreflightDeps): Promise<Preflight> {
  const dataDir = await inspectDataDir(options.dataDir);
  const exclusions = resolveExclusions({
    excludeClasses: options.excludeClass,
    includeClasses: options.includeClass,
    patterns: options.exclude,
  });

  if (options.copy === 'full' && !options.to) {
    throw new DssnapError('USAGE', 'No destination: --to is required unless --copy none', {
      hint: 'Give --to /backups/dss (or host:/path), or --copy none --keep-snapshot for a snapshot-only rollback point.',
    });
  }
  if (options.copy === 'none' && (options.mode === 'cold' || !options.keepSnapshot)) {
    throw new DssnapError(
      'USAGE',
      '--copy none needs snapshot mode and --keep-snapshot: otherwise nothing would be kept',
      {
        hint: 'Use --copy none --keep-snapshot for a rollback point, or give --to for a copy.',
      },
    );
  }

  const mode = options.mode ?? 'snapshot';
  let provider: SnapshotProvider | undefined;
  let providerSettings: Record<string, unknown> | undefined;
  let volumes: Volume[] = [];
  let quiesce: QuiesceMode = options.quiesce ?? 'stop';
  if (mode === 'snapshot') {
    const providerId = options.provider ?? (await detectProvider(dataDir.path));
    providerSettings = {
      ...options.providerOptions,
      ...(options.snapshotDir ? { snapshotDir: options.snapshotDir } : {}),
      ...(options.snapshotSize ? { snapshotSize: options.snapshotSize } : {}),
      ...(options.volume?.length ? { volumes: options.volume } : {}),
    };
    const raw = await loadProvider(providerId, { stateDir: options.stateDir, settings: providerSettings });
    provider = withRetries(raw, { log: deps.log });
    quiesce = options.quiesce ?? provider.defaultQuiesce;
    const support = provider.supportedQuiesce[quiesce];
    if (support !== true) {
      throw new DssnapError(
        'UNSUPPORTED',
        `--quiesce ${quiesce} cannot be used with the ${provider.id} provider${typeof support === 'string' ? `: ${support}` : ''}`,
        {
          hint: `Use --quiesce ${provider.defaultQuiesce} (the default for ${provider.id}).`,
        },
      );
    }
    volumes = await provider.locate(dataDir.path);
    await checkMountsCovered(dataDir.path, volumes, provider.id);
    await provider.checkQuiesce?.(volumes, quiesce);
    if (quiesce === 'fsfreeze') await checkFreezable(volumes, options);
  } else if (options.quiesce && options.quiesce !== 'stop') {
    throw new DssnapError(
      'USAGE',
      `--quiesce ${options.quiesce} does not apply to --mode cold: a cold backup stops DSS for the whole copy`,
    );
  }

  let destination: Destination | undefined;
  let previousGeneration: string | undefined;
  let estimatedBytes: number | undefined;
  if (options.copy === 'full') {
    requireTool(options.format === 'rsync' ? 'rsync' : 'tar', options.format === 'rsync' ? 'rsync' : 'tar');
    if (options.format === 'tar') requireTool(options.compression, options.compression);
    destination = await checkDestination(options.to!, dataDir.path);
    if (destination.kind === 'remote' && options.format === 'rsync') {
      // Remote generations are catalogued in the state dir (the catalog must stay readable offline).
      const prefix = `${options.to!.replace(/\/+$/, '')}/`;
      const remote = (await readManifests(join(options.stateDir, 'catalog'))).filter(
        (m) => m.dataDir === dataDir.path && m.copy?.format === 'rsync' && m.copy.location.startsWith(prefix),
      );
      previousGeneration = remote.at(-1)?.id;
    }
    if (destination.kind === 'local') {
      const previous =
        options.format === 'rsync' ? await previousGenerationOf(destination.path, dataDir.path) : undefined;
      previousGeneration = previous?.id;
      if (!options.force) {
        // An incremental run takes the size from the previous generation's manifest: walking a
        // million-file DATA_DIR only to estimate 10 % of it costs more than the rsync that follows.
        estimatedBytes = previous?.stats.totalBytes || (await copiedBytes(dataDir.path, exclusions));
        await checkFreeSpace(
          destination.path,
          neededBytes(estimatedBytes, options.format, previousGeneration),
        );
      }
    }
  }

  return {
    dataDir,
    mode,
    ...(provider ? { provider } : {}),
    ...(providerSettings ? { providerSettings } : {}),
    quiesce,
    volumes,
    ...(destination ? { destination } : {}),
    ...(previousGeneration ? { previousGeneration } : {}),
    exclusions,
    ...(estimatedBytes !== undefined ? { estimatedBytes } : {}),
    checkJobs: jobsCheck(options, deps, mode === 'cold' || quiesce === 'stop'),
  };
}

/**
 * A filesystem mounted inside DATA_DIR that the provider did not locate would be missing from the
 * snapshot (it shows as an empty directory there): refuse rather than lose it silently.
 */
async function checkMountsCovered(
  dataDir: string,
  volumes: readonly Volume[],
  providerId: string,
): Promise<void> {
  const covered = new Set(volumes.map((v) => v.mountPoint));
  const uncovered = (await mountsBelow(dataDir)).filter((target) => !covered.has(target));
  if (uncovered.length > 0) {
    throw new DssnapError(
      'UNSUPPORTED',
      `Other filesystems are mounted inside DATA_DIR (${uncovered.join(', ')}) and the ${providerId} provider does not snapshot them: they would be missing from the backup`,
      {
        hint: 'Use a provider that snapshots every volume of DATA_DIR (e.g. lvm), unmount them, or use --mode cold.',
      },
    );
  }
}

/**
 * The manifest of the newest catalogued rsync generation of this DATA_DIR still on disk: the base the
 * next one hard-links to. Only catalogued generations count — never a stray directory (lost+found) or
 * the copy of a failed run.
 */
async function previousGenerationOf(destination: string, dataDir: string): Promise<Manifest | undefined> {
  const manifests = await readManifests(catalogDir(destination));
  const candidates = manifests.filter(
    (m) => m.dataDir === dataDir && m.copy?.format === 'rsync' && existsSync(join(destination, m.id)),
  );
  return candidates.at(-1);
}

/** Size of DATA_DIR less its excluded class folders (user patterns are not measured). */
export async function copiedBytes(dataDir: string, exclusions: ResolvedExclusions): Promise<number> {
  const total = await measureTree(dataDir);
  const excluded = await measureExclusions(dataDir, exclusions);
  // A directory costs at least a block in the copy.
  return Math.max(0, total.bytes + total.directories * 4096 - excluded.reduce((sum, m) => sum + m.bytes, 0));
}

/**
 * What the copy will write: all of it the first time; after that an rsync generation writes only what
 * changed (a 10 % margin), an archive is compressed (DSS trees compress to well under half).
 */
function neededBytes(treeBytes: number, format: 'rsync' | 'tar', previous: string | undefined): number {
  if (format === 'tar') return Math.ceil(treeBytes * 0.6);
  return previous ? Math.ceil(treeBytes * 0.1) : treeBytes;
}

/**
 * fsfreeze blocks every writer of the filesystem, this tool included: never freeze `/`, nor the
 * filesystem holding dssnap's state, mounts or temp files (ec2-consistent-snapshot: "can hang if its
 * output goes to a filesystem being frozen").
 */
/** Filesystems whose kernel driver implements freeze (FIFREEZE); tmpfs, overlay, NFS and FUSE do not. */
const freezableFilesystems = new Set([
  'ext3',
  'ext4',
  'xfs',
  'jfs',
  'reiserfs',
  'f2fs',
  'nilfs2',
  'gfs2',
  'ocfs2',
]);

async function checkFreezable(volumes: readonly Volume[], options: BackupOptions): Promise<void> {
  requireTool('fsfreeze', 'util-linux');
  const own = [options.stateDir, options.mountRoot, tmpdir()];
  for (const volume of volumes) {
    const mount = await mountOf(volume.mountPoint);
    const target = mount.target;
    if (!freezableFilesystems.has(mount.fsType)) {
      throw new DssnapError('UNSUPPORTED', `fsfreeze is not supported on ${mount.fsType} (${target})`, {
        hint: `Filesystems that can be frozen: ${[...freezableFilesystems].join(', ')}. Use --quiesce stop (DSS is stopped for the snapshot instant).`,
      });
    }
    if (target === '/') {
      throw new DssnapError(
        'UNSUPPORTED',
        `Refusing to fsfreeze the root filesystem: DATA_DIR is on / (${volume.id})`,
        {
          hint: 'Freezing / blocks the whole host, dssnap included. Put DATA_DIR on its own volume, or use --quiesce stop.',
        },
      );
    }
    for (const path of own) {
      if ((await mountOf(path).catch(() => undefined))?.target === target) {
        throw new DssnapError(
          'UNSUPPORTED',
          `Refusing to fsfreeze ${target}: it also holds dssnap's own files (${path})`,
          {
            hint: 'Move --state-dir / --mount-root / TMPDIR to another filesystem, or use --quiesce stop.',
          },
        );
      }
    }
  }
}

/**
 * The running-jobs check before DSS is stopped (also used by restore): refuses (JOBS_RUNNING) while DSS
 * jobs or scenarios run, unless --force; waits up to --wait-for-jobs.
 */
export function jobsCheck(
  options: Pick<BackupOptions, 'force' | 'dssUrl' | 'dssApiKeyFile' | 'waitForJobs'>,
  deps: PreflightDeps,
  stopsDss: boolean,
): (signal: AbortSignal) => Promise<void> {
  return async (signal) => {
    if (options.force) {
      deps.log.warn({}, 'Running-jobs check skipped (--force)');
      return;
    }
    if (!options.dssUrl) {
      if (stopsDss) {
        throw new DssnapError(
          'JOBS_RUNNING',
          'Cannot check that no DSS job runs before stopping DSS: no --dss-url given',
          {
            hint: `Give --dss-url http://localhost:PORT with the API key in ${'DSSNAP_DSS_API_KEY'} or --dss-api-key-file, or --force to stop DSS without checking.`,
          },
        );
      }
      deps.log.info({}, 'No --dss-url: running jobs not checked (DSS is not stopped in this mode)');
      return;
    }
    const key = await readApiKey({
      env: deps.env,
      ...(options.dssApiKeyFile ? { file: options.dssApiKeyFile } : {}),
    });
    if (!key) {
      throw new DssnapError(
        'CONFIG_INVALID',
        'No DSS API key: --dss-url is given but neither DSSNAP_DSS_API_KEY nor --dss-api-key-file is set',
        {
          hint: 'Create an API key with admin rights in DSS and put it in a file readable only by root (--dss-api-key-file), or in DSSNAP_DSS_API_KEY.',
        },
      );
    }
    if (key.warning) deps.log.warn({ file: key.file }, key.warning);
    const maxWaitMs =
      options.waitForJobs === undefined ? 0 : parseDuration(options.waitForJobs, '--wait-for-jobs');
    await waitForNoRunningWork({
      url: options.dssUrl,
      apiKey: key.apiKey,
      signal,
      maxWaitMs,
      // Poll often enough that a short wait is not all spent sleeping, never more than every second.
      pollMs: Math.min(10_000, Math.max(1_000, maxWaitMs / 10)),
      onWait: (running, waitedMs) =>
        deps.log.info({ running: running.length, waitedMs }, 'Waiting for DSS jobs to finish'),
    });
  };
}
