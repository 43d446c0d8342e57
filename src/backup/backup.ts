/**
 * One backup run, both modes (DESIGN.md §1). Preflight changes nothing; every later step that changes
 * the world goes through the runner, which journals it and knows its undo, so a failure, a signal or a
 * SIGKILL followed by `dssnap recover` leaves the host as it was: DSS running, nothing frozen, nothing
 * mounted, no snapshot or partial copy left (unless `--keep-snapshot` retained it on purpose).
 * The same code, with a dry-run runner, produces `dssnap plan`.
 */
import { hostname } from 'node:os';
import { join, relative } from 'node:path';
import { hashFilesStep, hashStepKind } from '../catalog/hash-step.js';
import { catalogDir, type Manifest, type ManifestFileIndex, writeManifest } from '../catalog/manifest.js';
import { type PruneResult, policyOf, pruneAfterBackup } from '../catalog/prune.js';
import type { BackupOptions } from '../config.js';
import { createGeneration } from '../copy/rsync-generations.js';
import { createArchive } from '../copy/tar-archive.js';
import type { CopyProgress, CopyResult } from '../copy/types.js';
import { stopDss } from '../dss/control.js';
import { parseDuration } from '../duration.js';
import { DssnapError, ExitCode, type ExitCodeValue } from '../errors.js';
import {
  type GovernBackupPlan,
  governDumpStepKind,
  governPreflight,
  startGovernDump,
} from '../govern/backup-step.js';
import { whileFrozen } from '../host/fsfreeze.js';
import { bindMountReadOnly, mountReadOnly } from '../host/mounts.js';
import type { Logger } from '../log.js';
import { failRun } from '../procedure/fail-run.js';
import { archiveJournal, createRunId, type Json, openJournal } from '../procedure/journal.js';
import { acquireLock } from '../procedure/lock.js';
import { createRunner, type PlannedStep, type Runner } from '../procedure/runner.js';
import {
  type Exposure,
  type Snapshot,
  type SnapshotProvider,
  TagKey,
  type Tags,
  type Volume,
} from '../provider/types.js';
import { waitForSnapshotsReady } from '../provider/wait.js';
import { type Destination, isWithin } from './destination.js';
import { type ExposureWatch, unwatched, watchExposures } from './exposure-watch.js';
import { type Preflight, preflight } from './preflight.js';
import { recoverRun } from './recover.js';
import {
  type CopyIntent,
  type MountIntent,
  StepKind,
  type StepKindName,
  undoHandlers,
} from './undo-steps.js';

export interface BackupDeps {
  log: Logger;
  /** Aborted on SIGINT/SIGTERM by the CLI: the run undoes everything and fails with INTERRUPTED. */
  signal?: AbortSignal;
  onProgress?: (progress: CopyProgress) => void;
  env?: NodeJS.ProcessEnv;
  /** How often the exposed snapshots are checked during a copy (exposure-watch.ts); default 10 s. */
  exposureCheckMs?: number;
}

export interface BackupResult {
  runId: string;
  backupId: string;
  phase: Manifest['phase'];
  exitCode: ExitCodeValue;
  manifest: Manifest;
  manifestPath: string;
  /** `--prune`: what the retention policy removed after the run. */
  prune?: PruneResult;
}

export interface BackupPlan {
  runId: string;
  preflight: Preflight;
  steps: readonly PlannedStep[];
}

/** Run a backup. Returns the manifest of a completed run; throws a DssnapError after undoing everything. */
export async function runBackup(options: BackupOptions, deps: BackupDeps): Promise<BackupResult> {
  const startedAt = new Date();
  const runId = createRunId(startedAt);
  const log = deps.log.child({ runId });
  const plan = await preflight(options, { log, env: deps.env ?? process.env });
  const extras = await preflightExtras(options, plan, runId, { ...deps, log });

  const acquired = acquireLock(options.stateDir, plan.dataDir.path, runId);
  try {
    if (acquired.staleRunId) {
      log.warn(
        { staleRunId: acquired.staleRunId },
        'A previous run died holding the lock; recovering it first',
      );
      await recoverRun(options.stateDir, acquired.staleRunId, log);
    }
    const journal = openJournal(options.stateDir, runId, journalMeta(options, plan, runId));
    const runner = createRunner({ runId, journal, log, ...(deps.signal ? { signal: deps.signal } : {}) });
    let manifest: Manifest;
    try {
      manifest = await execute(options, plan, runner, { ...deps, log }, startedAt, extras);
    } catch (error) {
      throw await failRun(runner, journal, error, {
        what: 'backup',
        log,
        ...(deps.signal ? { signal: deps.signal } : {}),
      });
    }
    let manifestPath: string;
    try {
      manifestPath = await writeManifest(manifestDir(options, plan.destination), manifest);
    } catch (error) {
      await runner.finish(error);
      journal.close();
      throw error;
    }
    // Catalogued: the copy is a backup now, nothing of it is to be undone any more.
    runner.dropUndo(StepKind.copy);
    runner.dropUndo(hashStepKind);
    runner.dropUndo(governDumpStepKind);
    await runner.finish();
    journal.close();
    archiveJournal(journal.path);
    log.info(
      {
        backupId: manifest.id,
        pauseMs: manifest.pauseMs,
        phase: manifest.phase,
        ...(manifest.apiCalls ? { apiCalls: sum(Object.values(manifest.apiCalls)) } : {}),
      },
      'Backup done',
    );
    // --prune: the backup is done whatever the prune does; a failed prune is a warning (exit 2).
    const prune = options.prune ? await pruneAfterBackup(options, runId, log) : undefined;
    const pruneFailed = prune !== undefined && (prune.failed > 0 || prune.error !== undefined);
    return {
      runId,
      backupId: manifest.id,
      phase: manifest.phase,
      exitCode: manifest.phase === 'completed' && !pruneFailed ? ExitCode.ok : ExitCode.completedWithWarnings,
      manifest,
      manifestPath,
      ...(prune ? { prune } : {}),
    };
  } finally {
    acquired.lock.release();
  }
}

/** Every step a backup would take with these options, without taking any (`dssnap plan`). */
export async function planBackup(options: BackupOptions, deps: BackupDeps): Promise<BackupPlan> {
  const runId = createRunId();
  const plan = await preflight(options, { log: deps.log, env: deps.env ?? process.env });
  const extras = await preflightExtras(options, plan, runId, deps);
  const runner = createRunner({ runId, log: deps.log, dryRun: true });
  await execute(options, plan, runner, deps, new Date(), extras);
  return { runId, preflight: plan, steps: runner.plan };
}

function manifestDir(options: BackupOptions, destination: Destination | undefined): string {
  return destination?.kind === 'local' ? catalogDir(destination.path) : join(options.stateDir, 'catalog');
}

/** Checks of the Govern database and the --prune policy: before anything changes. */
interface BackupExtras {
  govern?: GovernBackupPlan;
}

async function preflightExtras(
  options: BackupOptions,
  plan: Preflight,
  runId: string,
  deps: BackupDeps,
): Promise<BackupExtras> {
  if (options.prune) policyOf(options);
  const govern = await governPreflight({
    nodeType: plan.dataDir.nodeType,
    dataDir: plan.dataDir.path,
    backupId: runId,
    ...(plan.destination ? { destination: plan.destination } : {}),
    stateDir: options.stateDir,
    ...(options.governDb ? { governDb: options.governDb } : {}),
    ...(options.governDbPasswordFile ? { governDbPasswordFile: options.governDbPasswordFile } : {}),
    env: deps.env ?? process.env,
    log: deps.log,
  });
  return govern ? { govern } : {};
}

/** What `dssnap recover` needs to rebuild the undo handlers of this run in another process. */
export interface BackupJournalMeta {
  command: 'backup';
  runId: string;
  dataDir: string;
  stateDir: string;
  mode: 'snapshot' | 'cold';
  provider: string | null;
  providerSettings: Record<string, unknown>;
  startTimeoutMs: number;
}

function journalMeta(options: BackupOptions, plan: Preflight, runId: string): Json {
  const meta: BackupJournalMeta = {
    command: 'backup',
    runId,
    dataDir: plan.dataDir.path,
    stateDir: options.stateDir,
    mode: plan.mode,
    provider: plan.provider?.id ?? null,
    providerSettings: plan.providerSettings ?? {},
    startTimeoutMs: parseDuration(options.startTimeout, '--start-timeout'),
  };
  return meta as unknown as Json;
}

interface RunContext {
  options: BackupOptions;
  plan: Preflight;
  runner: Runner;
  deps: BackupDeps;
  runId: string;
  backupId: string;
  tags: Tags;
  undo: (kind: StepKindName, intent: unknown) => (result: unknown) => Promise<void>;
  /** The file index, once hashed (a remote copy's source is hashed inside the copy step). */
  files?: ManifestFileIndex;
}

async function execute(
  options: BackupOptions,
  plan: Preflight,
  runner: Runner,
  deps: BackupDeps,
  startedAt: Date,
  extras: BackupExtras = {},
): Promise<Manifest> {
  const runId = runner.runId;
  const handlers = undoHandlers({
    log: deps.log,
    runId,
    dataDir: plan.dataDir,
    provider: async () => {
      if (!plan.provider) throw new DssnapError('INTERNAL', 'No provider in this run');
      return plan.provider;
    },
    startTimeoutMs: parseDuration(options.startTimeout, '--start-timeout'),
  });
  const ctx: RunContext = {
    options,
    plan,
    runner,
    deps,
    runId,
    backupId: runId,
    tags: {
      [TagKey.runId]: runId,
      [TagKey.dataDir]: plan.dataDir.path,
      [TagKey.createdAt]: startedAt.toISOString(),
    },
    // The live undo is the recovery handler fed with what the journal would hold.
    undo: (kind, intent) => async (result) =>
      handlers[kind]({
        intent: intent as Json,
        record: result as Json | undefined,
        done: result !== undefined,
      }),
  };

  await runner.step({
    kind: 'check-jobs',
    title: 'Check that no DSS job or scenario is running',
    run: (signal) => plan.checkJobs(signal),
    preview: () => undefined,
  });

  let snapshots: Snapshot[] = [];
  let pauseMs: number;
  let copy: CopyResult | undefined;
  // Govern: the database dump starts right after the snapshot instant (cold: right after the stop).
  let dumping: ReturnType<typeof startGovernDump> | undefined;
  if (plan.mode === 'cold') {
    const stopped = performance.now();
    await stopDssStep(ctx);
    if (extras.govern) dumping = startGovernDump(runner, extras.govern, performance.now(), deps.log);
    copy = await copyStep(ctx, plan.dataDir.path);
    // On failure the runner's undo starts DSS; here it is started right after the copy.
    await runner.undoNow(StepKind.stopDss);
    pauseMs = performance.now() - stopped;
  } else {
    const taken = await snapshotSteps(ctx);
    if (extras.govern) dumping = startGovernDump(runner, extras.govern, performance.now(), deps.log);
    snapshots = taken.snapshots;
    pauseMs = taken.pauseMs;
    const provider = plan.provider!;
    await runner.step({
      kind: 'wait-snapshots',
      title: 'Wait until the snapshots are usable',
      run: (signal) =>
        waitForSnapshotsReady(provider, snapshots, {
          deadlineMs: parseDuration(options.snapshotTimeout, '--snapshot-timeout'),
          signal,
        }),
      preview: () => undefined,
    });
    if (options.copy === 'full') copy = await copyFromSnapshots(ctx, snapshots);
    if (options.keepSnapshot) {
      snapshots = await runner.step({
        kind: 'retain-snapshots',
        title: 'Retain the snapshots (tagged, subject to retention)',
        run: async () => {
          const retained: Snapshot[] = [];
          for (const snapshot of snapshots)
            retained.push(await provider.retain(snapshot, { [TagKey.retain]: 'true' }));
          return retained;
        },
        preview: () => snapshots,
      });
      runner.dropUndo(StepKind.snapshot);
    } else {
      await runner.undoNow(StepKind.snapshot);
    }
  }

  if (copy && !ctx.files) ctx.files = await hashCopyStep(ctx, copy);
  const governDb = dumping ? await dumping : undefined;
  const warnings = [...runner.warnings.map((w) => w.message), ...(copy?.warnings ?? [])];
  const finishedAt = new Date();
  return {
    schemaVersion: 1,
    id: ctx.backupId,
    runId,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    phase: warnings.length > 0 ? 'completed-with-warnings' : 'completed',
    mode: plan.mode,
    ...(plan.provider ? { provider: plan.provider.id } : {}),
    quiesce: plan.quiesce,
    dataDir: plan.dataDir.path,
    host: hostname(),
    dss: {
      productVersion: plan.dataDir.version.productVersion,
      confVersion: plan.dataDir.version.confVersion,
      nodeType: plan.dataDir.nodeType,
    },
    ...(copy
      ? {
          copy: {
            format: options.format,
            location: copy.location,
            ...(options.format === 'tar' ? { compression: options.compression } : {}),
            ...(plan.previousGeneration && options.format === 'rsync'
              ? { basedOn: plan.previousGeneration }
              : {}),
          },
        }
      : {}),
    snapshots: snapshots.map((s) => ({
      id: s.id,
      provider: s.provider,
      volumeId: s.volumeId,
      createdAt: s.createdAt,
      retained: options.keepSnapshot,
    })),
    exclusions: { classes: [...plan.exclusions.classes], patterns: [...plan.exclusions.patterns] },
    stats: copy
      ? {
          files: copy.stats.files,
          totalBytes: copy.stats.totalBytes,
          transferredBytes: copy.stats.transferredBytes,
        }
      : { files: 0, totalBytes: 0, transferredBytes: 0 },
    pauseMs: Math.round(pauseMs * 10) / 10,
    durationMs: finishedAt.getTime() - startedAt.getTime(),
    steps: runner.timings
      .filter((t) => !t.undo)
      .map((t) => ({ kind: t.kind, title: t.title, durationMs: Math.round(t.durationMs) })),
    warnings,
    ...(ctx.files ? { files: ctx.files } : {}),
    ...(governDb ? { governDb } : {}),
    ...apiCallsOf(plan.provider),
  };
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

/** The provider's API calls so far, when it counts them (the cloud providers do). */
function apiCallsOf(provider: SnapshotProvider | undefined): { apiCalls?: Record<string, number> } {
  const calls = provider?.apiCalls?.();
  return calls && Object.keys(calls).length > 0 ? { apiCalls: calls } : {};
}

/** Hash the local copy (generation or archive) after it is complete, into the catalog. */
function hashCopyStep(ctx: RunContext, copy: CopyResult): Promise<ManifestFileIndex> {
  const { options, plan } = ctx;
  return hashFilesStep({
    runner: ctx.runner,
    backupId: ctx.backupId,
    catalogDir: manifestDir(options, plan.destination),
    ...(options.format === 'tar' ? { archive: copy.location } : { tree: copy.location }),
    ...(plan.previousGeneration && options.format === 'rsync'
      ? { previousBackupId: plan.previousGeneration }
      : {}),
    source: 'copy',
  });
}

async function stopDssStep(ctx: RunContext): Promise<void> {
  const intent = { dataDir: ctx.plan.dataDir.path };
  await ctx.runner.step({
    kind: StepKind.stopDss,
    title: 'Stop DSS (bin/dss stop)',
    intent,
    run: async (signal) => {
      await stopDss(ctx.plan.dataDir, {
        timeoutMs: parseDuration(ctx.options.stopTimeout, '--stop-timeout'),
        signal,
        log: ctx.deps.log,
      });
    },
    // Whatever stop did (even a stop that timed out half-way), DSS is started again.
    undo: async () => ctx.undo(StepKind.stopDss, intent)(null),
    preview: () => undefined,
  });
}

/** Quiesce, snapshot, release the quiesce at once: the pause is measured around exactly this. */
async function snapshotSteps(ctx: RunContext): Promise<{ snapshots: Snapshot[]; pauseMs: number }> {
  const { plan, runner } = ctx;
  const provider = plan.provider!;
  const snapshotIntent = {
    provider: provider.id,
    runId: ctx.runId,
    volumeIds: plan.volumes.map((v) => v.id),
  };
  const takeSnapshots = () =>
    runner.step({
      kind: StepKind.snapshot,
      title: `Snapshot ${plan.volumes.map((v) => v.id).join(', ')} (${provider.id})`,
      intent: snapshotIntent,
      run: () => provider.createSnapshots(plan.volumes, { ...ctx.tags, [TagKey.role]: 'snapshot' }),
      record: (snapshots) => ({ snapshots }) as unknown as Json,
      undo: (snapshots) => ctx.undo(StepKind.snapshot, snapshotIntent)(snapshots ? { snapshots } : undefined),
      preview: () =>
        plan.volumes.map((volume) => ({
          id: `<snapshot of ${volume.id}>`,
          provider: provider.id,
          volumeId: volume.id,
          createdAt: new Date().toISOString(),
          tags: ctx.tags,
        })),
    });

  if (plan.quiesce === 'fsfreeze') {
    const mountPoints = [...new Set(plan.volumes.map((v) => v.mountPoint))];
    const freezeIntent = { mountPoints };
    // Journaled before freezing, so that a SIGKILL while frozen is thawed by `recover`.
    await runner.step({
      kind: StepKind.freeze,
      title: `Freeze ${mountPoints.join(', ')} for the snapshot instant (fsfreeze)`,
      intent: freezeIntent,
      run: async () => undefined,
      undo: () => ctx.undo(StepKind.freeze, freezeIntent)(null),
      preview: () => undefined,
    });
    if (runner.dryRun) {
      const snapshots = await takeSnapshots();
      await runner.undoNow(StepKind.freeze);
      return { snapshots, pauseMs: 0 };
    }
    try {
      const frozen = await whileFrozen(mountPoints, takeSnapshots, {
        maxPauseMs: parseDuration(ctx.options.maxPause, '--max-pause'),
        log: ctx.deps.log,
      });
      return { snapshots: frozen.value, pauseMs: frozen.pauseMs };
    } finally {
      await runner.undoNow(StepKind.freeze);
    }
  }
  if (plan.quiesce === 'stop') {
    const stopped = performance.now();
    await stopDssStep(ctx);
    const snapshots = await takeSnapshots();
    await runner.undoNow(StepKind.stopDss);
    return { snapshots, pauseMs: performance.now() - stopped };
  }
  // quiesce none: the snapshot call itself is the only moment writers may be held (btrfs, LVM).
  const started = performance.now();
  const snapshots = await takeSnapshots();
  return { snapshots, pauseMs: performance.now() - started };
}

/**
 * Expose every snapshot and assemble DATA_DIR as it was at the snapshot instant: the volume holding
 * DATA_DIR first, then each volume mounted below DATA_DIR mounted into place on top of it (a device is
 * mounted read-only, a directory bind-mounted), so one copy sees the whole tree. Unmounted and released
 * in reverse order once the copy is done.
 */
async function copyFromSnapshots(ctx: RunContext, snapshots: readonly Snapshot[]): Promise<CopyResult> {
  const { plan, runner } = ctx;
  const [primary, ...nested] = volumesInMountOrder(plan.volumes, plan.dataDir.path);
  let source = '';
  let mounts = 0;
  const exposures: Exposure[] = [];
  for (const volume of [primary!, ...nested]) {
    const snapshot = snapshots.find((s) => s.volumeId === volume.id);
    if (!snapshot) throw new DssnapError('PROVIDER_ERROR', `No snapshot was taken of volume ${volume.id}`);
    const exposure = await exposeStep(ctx, snapshot);
    exposures.push(exposure);
    if (volume === primary) {
      if (exposure.directory) {
        source = join(exposure.directory, volume.relativePath);
        continue;
      }
      const mountPoint = join(ctx.options.mountRoot, ctx.runId, snapshot.id.replace(/[^A-Za-z0-9._-]/g, '_'));
      await mountStep(ctx, { mountPoint, ...deviceOf(ctx, exposure, volume) });
      mounts++;
      source = join(mountPoint, volume.relativePath);
      continue;
    }
    const mountPoint = join(source, relative(plan.dataDir.path, volume.mountPoint));
    await mountStep(
      ctx,
      exposure.directory
        ? { mountPoint, device: join(exposure.directory, volume.relativePath), fsType: 'none', bind: true }
        : { mountPoint, ...deviceOf(ctx, exposure, volume) },
    );
    mounts++;
  }
  const watch = watchExposures(plan.provider!, exposures, ctx.deps.exposureCheckMs);
  const copy = await copyStep(ctx, source, watch);
  await watch.afterCopy(runner);
  for (let i = 0; i < mounts; i++) await runner.undoNow(StepKind.mount);
  for (let i = 0; i <= nested.length; i++) await runner.undoNow(StepKind.expose);
  return copy;
}

/** The volume holding DATA_DIR first, then the volumes mounted below it, outermost first. */
export function volumesInMountOrder(volumes: readonly Volume[], dataDir: string): Volume[] {
  const primary = volumes.find((v) => !isWithin(v.mountPoint, dataDir) || v.mountPoint === dataDir);
  if (!primary)
    throw new DssnapError('PROVIDER_ERROR', `None of the volumes located holds ${dataDir} itself`);
  const nested = volumes
    .filter((v) => v !== primary)
    .sort((a, b) => a.mountPoint.split('/').length - b.mountPoint.split('/').length);
  return [primary, ...nested];
}

function deviceOf(ctx: RunContext, exposure: Exposure, volume: Volume): { device: string; fsType: string } {
  if (!exposure.device) {
    throw new DssnapError(
      'PROVIDER_ERROR',
      `Provider ${ctx.plan.provider!.id} exposed neither a directory nor a device for ${exposure.snapshotId}`,
    );
  }
  return { device: exposure.device, fsType: exposure.fsType ?? volume.fsType };
}

function exposeStep(ctx: RunContext, snapshot: Snapshot): Promise<Exposure> {
  const provider = ctx.plan.provider!;
  const exposeIntent = { snapshot };
  return ctx.runner.step({
    kind: StepKind.expose,
    title: `Expose snapshot ${snapshot.id} on this host`,
    intent: exposeIntent as unknown as Json,
    run: () => provider.expose(snapshot, { ...ctx.tags, [TagKey.role]: 'exposure' }),
    record: (exposure) => ({ exposure }) as unknown as Json,
    undo: (exposure) => ctx.undo(StepKind.expose, exposeIntent)(exposure ? { exposure } : undefined),
    preview: () => ({
      snapshotId: snapshot.id,
      directory: `<${provider.id} snapshot ${snapshot.id}>`,
      resources: [],
    }),
  });
}

async function mountStep(ctx: RunContext, intent: MountIntent): Promise<void> {
  await ctx.runner.step({
    kind: StepKind.mount,
    title: `${intent.bind ? 'Bind-mount' : 'Mount'} ${intent.device} read-only at ${intent.mountPoint}`,
    intent: intent as unknown as Json,
    run: () =>
      intent.bind
        ? bindMountReadOnly(intent.device, intent.mountPoint)
        : mountReadOnly(intent.device, intent.mountPoint, intent.fsType),
    undo: () => ctx.undo(StepKind.mount, intent)(null),
    preview: () => undefined,
  });
}

async function copyStep(
  ctx: RunContext,
  source: string,
  watch: ExposureWatch = unwatched,
): Promise<CopyResult> {
  const { options, plan } = ctx;
  const destination = options.to!;
  const intent: CopyIntent = {
    format: options.format,
    destination,
    backupId: ctx.backupId,
    ...(options.sshCommand ? { sshCommand: options.sshCommand } : {}),
  };
  const result = await ctx.runner.step<CopyResult>({
    kind: StepKind.copy,
    title: `Copy ${source} to ${destination} (${options.format === 'rsync' ? `rsync generation${plan.previousGeneration ? ` linked to ${plan.previousGeneration}` : ', first full copy'}` : `tar + ${options.compression}`})`,
    intent: intent as unknown as Json,
    // A snapshot that dies under the copy stops it (exposure-watch.ts).
    run: watch.guard((signal) =>
      options.format === 'rsync'
        ? createGeneration({
            source,
            destination,
            backupId: ctx.backupId,
            ...(plan.previousGeneration ? { previousBackupId: plan.previousGeneration } : {}),
            excludes: plan.exclusions.patterns,
            signal,
            log: ctx.deps.log,
            ...(options.sshCommand ? { sshCommand: options.sshCommand } : {}),
            ...(ctx.deps.onProgress ? { onProgress: ctx.deps.onProgress } : {}),
          })
        : createArchive({
            source,
            destination,
            backupId: ctx.backupId,
            compression: options.compression,
            ...(options.compressionLevel ? { level: options.compressionLevel } : {}),
            excludes: plan.exclusions.patterns,
            signal,
            log: ctx.deps.log,
          }),
    ),
    record: (result) => ({ location: result.location }),
    undo: (result) => ctx.undo(StepKind.copy, intent)(result ? { location: result.location } : undefined),
    preview: () => ({
      location: `${destination}/${ctx.backupId}`,
      warnings: [],
      stats: { files: 0, totalBytes: plan.estimatedBytes ?? 0, transferredBytes: 0, durationMs: 0 },
    }),
  });
  for (const warning of result.warnings) ctx.deps.log.warn({ warning }, 'Copy completed with a warning');
  if (plan.destination?.kind === 'remote') {
    // A remote copy cannot be walked here: hash what it was copied from, before that is released.
    ctx.files = await hashFilesStep({
      runner: ctx.runner,
      backupId: ctx.backupId,
      catalogDir: manifestDir(options, plan.destination),
      tree: source,
      source: 'snapshot',
      ...(plan.previousGeneration ? { previousBackupId: plan.previousGeneration } : {}),
      skip: excludedTopLevel(plan.exclusions.patterns),
    });
  }
  return result;
}

/** The anchored folder patterns (`/tmp/`) as a skip test for hashing a copy's source. */
function excludedTopLevel(patterns: readonly string[]): (path: string) => boolean {
  const names = new Set(patterns.map((p) => /^\/([^/*?[]+)\/?$/.exec(p)?.[1]).filter((n) => n !== undefined));
  return (path) => names.has(path);
}
