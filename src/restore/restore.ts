/**
 * `dssnap restore`: put a backup (or a retained snapshot) back as a DSS data directory.
 *
 * Preflight changes nothing: the source exists, the target is recognised, the DSS versions allow it,
 * DSS can be stopped (jobs check), there is room, the Govern database answers and is empty (or --clean).
 * Then the restored tree is prepared beside DATA_DIR and checked against the backup's file index while
 * DSS still runs; only then is DSS stopped, the live DATA_DIR renamed aside (never deleted) and the
 * restored tree renamed into place, the database restored, the installer run (restore elsewhere) and DSS
 * started. Every step is journaled with its undo: any failure, SIGINT/SIGTERM, or `dssnap recover` after a
 * SIGKILL puts the original DATA_DIR (and database) back exactly as it was and starts DSS if it ran.
 */
import { existsSync } from 'node:fs';
import { chown } from 'node:fs/promises';
import { join } from 'node:path';
import { jobsCheck } from '../backup/preflight.js';
import {
  compareEntries,
  type IndexEntry,
  isClean,
  readIndex,
  type TreeDifferences,
  walkArchive,
  walkTree,
} from '../catalog/hashes.js';
import { markInUse } from '../catalog/in-use.js';
import type { Manifest } from '../catalog/manifest.js';
import { describeDifferences } from '../catalog/verify.js';
import { dssStatus, startDss, stopDss } from '../dss/control.js';
import { type DataDirInfo, inspectDataDir } from '../dss/layout.js';
import { userNameOf } from '../dss/passwd.js';
import { type DssVersion, parseDssVersion } from '../dss/version.js';
import { parseDuration } from '../duration.js';
import { DssnapError, ExitCode, type ExitCodeValue, isDssnapError } from '../errors.js';
import { describeDb, type GovernDb, resolveGovernDb } from '../govern/connection.js';
import {
  checkDatabase,
  dumpDatabase,
  emptyDatabase,
  hashFile,
  isDatabaseEmpty,
  listDump,
  restoreDump,
} from '../govern/database.js';
import { requireTool, run } from '../host/exec.js';
import { mountReadOnly } from '../host/mounts.js';
import type { Logger } from '../log.js';
import { failRun } from '../procedure/fail-run.js';
import { archiveJournal, createRunId, type Json, openJournal } from '../procedure/journal.js';
import { type AcquiredLock, acquireLock } from '../procedure/lock.js';
import { createRunner, type Runner } from '../procedure/runner.js';
import { TagKey } from '../provider/types.js';
import {
  checkVersionOrder,
  type FollowUp,
  type InstallDir,
  inspectInstallDir,
  prepareFollowUp,
  runInstaller,
} from './installer.js';
import { copyTree, materializeCopy, readCopyFile } from './materialize.js';
import type { RestoreOptions } from './options.js';
import { type RestoreSource, resolveSource, sourceManifest, sourceName } from './source.js';
import { type RestoreDbIntent, RestoreStep, restoreUndoHandlers } from './steps.js';
import {
  asidePath,
  checkRoom,
  createStaging,
  emptyDirectory,
  inspectTarget,
  type RestoreTarget,
  stagingPath,
  swapIn,
} from './target.js';

export interface RestoreDeps {
  log: Logger;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
}

export interface RestoreResult {
  runId: string;
  source: string;
  backupId?: string;
  dataDir: string;
  strategy: RestoreTarget['strategy'];
  /** Where the previous DATA_DIR now is (renamed or copied aside), if there was one. */
  movedAside?: string;
  /** Entries checked against the backup's file index (0 when it had none). */
  verifiedEntries: number;
  database?: { database: string; restored: boolean; safetyDump?: string };
  installer?: { command: string[]; durationMs: number };
  dssStarted: boolean;
  followUp: string[];
  warnings: string[];
  steps: { kind: string; title: string; durationMs: number }[];
  durationMs: number;
  exitCode: ExitCodeValue;
}

/** The journal meta of a restore: what `dssnap recover` needs to rebuild its undo handlers. */
export interface RestoreJournalMeta {
  command: 'restore';
  runId: string;
  dataDir: string;
  stateDir: string;
  provider: string | null;
  providerSettings: Record<string, unknown>;
  startTimeoutMs: number;
  stopTimeoutMs: number;
}

interface Plan {
  source: RestoreSource;
  manifest?: Manifest;
  target: RestoreTarget;
  /** Another path, host or DSS version: installer.sh -u runs. */
  install?: InstallDir;
  /** DSS runs on the target and must be stopped. */
  dssRunning: boolean;
  db?: { db: GovernDb; dump: string; wasEmpty: boolean; passwordFile?: string };
  owner?: { uid: number; gid: number; user: string };
}

/**
 * Restore. Returns the outcome of a completed restore; throws a DssnapError after putting everything
 * back (a refusal at preflight has changed nothing).
 */
export async function runRestore(options: RestoreOptions, deps: RestoreDeps): Promise<RestoreResult> {
  const startedAt = new Date();
  const runId = createRunId(startedAt);
  const log = deps.log.child({ runId });
  const env = deps.env ?? process.env;
  const plan = await preflight(options, log, env);

  let lock: AcquiredLock | undefined;
  if (plan.target.state !== 'missing') lock = acquireLock(options.stateDir, plan.target.path, runId);
  const releaseUse = plan.manifest
    ? markInUse(options.stateDir, plan.manifest.id, 'restore')
    : () => undefined;
  try {
    if (lock?.staleRunId) {
      const { recoverRun } = await import('../backup/recover.js');
      log.warn({ staleRunId: lock.staleRunId }, 'A previous run died holding the lock; recovering it first');
      await recoverRun(options.stateDir, lock.staleRunId, log);
    }
    const meta: RestoreJournalMeta = {
      command: 'restore',
      runId,
      dataDir: plan.target.path,
      stateDir: options.stateDir,
      provider: plan.source.kind === 'snapshot' ? plan.source.provider.id : null,
      providerSettings: plan.source.kind === 'snapshot' ? plan.source.providerSettings : {},
      startTimeoutMs: parseDuration(options.startTimeout, '--start-timeout'),
      stopTimeoutMs: parseDuration(options.stopTimeout, '--stop-timeout'),
    };
    const journal = openJournal(options.stateDir, runId, meta as unknown as Json);
    const runner = createRunner({ runId, journal, log, ...(deps.signal ? { signal: deps.signal } : {}) });
    let outcome: Omit<RestoreResult, 'steps' | 'durationMs' | 'exitCode' | 'warnings'>;
    try {
      outcome = await execute(options, plan, runner, { log, env, meta }, startedAt);
    } catch (error) {
      throw await failRun(runner, journal, error, {
        what: 'restore',
        log,
        ...(deps.signal ? { signal: deps.signal } : {}),
      });
    }
    const summary = await runner.finish();
    journal.close();
    archiveJournal(journal.path);
    const warnings = summary.warnings.map((w) => w.message);
    return {
      ...outcome,
      warnings,
      steps: runner.timings
        .filter((t) => !t.undo)
        .map((t) => ({ kind: t.kind, title: t.title, durationMs: Math.round(t.durationMs) })),
      durationMs: Date.now() - startedAt.getTime(),
      exitCode: warnings.length > 0 ? ExitCode.completedWithWarnings : ExitCode.ok,
    };
  } finally {
    releaseUse();
    lock?.lock.release();
  }
}

async function preflight(options: RestoreOptions, log: Logger, env: NodeJS.ProcessEnv): Promise<Plan> {
  const source = await resolveSource(options, log);
  const manifest = sourceManifest(source);
  const target = await inspectTarget(options.dataDir);
  const origin =
    manifest?.dataDir ?? (source.kind === 'snapshot' ? source.snapshot.tags[TagKey.dataDir] : undefined);

  const install = options.installDir ? await inspectInstallDir(options.installDir) : undefined;
  if (!install && origin !== undefined && origin !== target.path) {
    throw new DssnapError(
      'USAGE',
      `The backup is of ${origin}; restoring it to another path (${target.path}) needs the DSS installer to re-attach it`,
      {
        hint: `Add --install-dir with the DSS installation of this host: dssnap runs INSTALL_DIR/installer.sh -d ${target.path} -u (bin/dss refuses to start a data directory that was moved without it).`,
        details: { origin, dataDir: target.path },
      },
    );
  }

  // Versions: the backup's own dss-version.json against the installation (or the live DATA_DIR).
  const backupVersion = source.kind === 'copy' ? await copyVersion(source) : manifestVersion(manifest);
  if (backupVersion && install)
    checkVersionOrder(backupVersion, install.version, `the installation ${install.path}`);
  if (backupVersion && target.info) {
    checkVersionOrder(backupVersion, target.info.version, `the DSS of ${target.path}`);
    if (!install && backupVersion.productVersion !== target.info.version.productVersion) {
      throw new DssnapError(
        'VERSION_MISMATCH',
        `The backup is from DSS ${backupVersion.productVersion}, ${target.path} is at DSS ${target.info.version.productVersion}: an older backup must be migrated by the installer`,
        {
          hint: `Add --install-dir with the DSS ${target.info.version.productVersion} installation: dssnap then runs its installer.sh -u on the restored data directory.`,
          details: { backup: backupVersion.productVersion, target: target.info.version.productVersion },
        },
      );
    }
  }

  let dssRunning = false;
  if (target.info) {
    dssRunning = (await dssStatus(target.info, { log })) === 'running';
    if (dssRunning && !options.force && !options.dssUrl) {
      throw new DssnapError(
        'JOBS_RUNNING',
        `DSS is running on ${target.path}: a restore must stop it, after checking that no job or scenario runs, and no --dss-url was given to check that`,
        {
          hint: `Give --dss-url http://localhost:PORT (API key in DSSNAP_DSS_API_KEY or --dss-api-key-file), or stop DSS yourself ('${target.path}/bin/dss stop'), or --force to stop it without checking.`,
          details: { dataDir: target.path },
        },
      );
    }
  }

  if (manifest?.stats.totalBytes !== undefined || target.strategy === 'copy-aside') {
    await checkRoom(target, manifest?.stats.totalBytes ?? 0);
  }

  let owner: Plan['owner'];
  if (options.owner) owner = await ownerOf(options.owner);

  let db: Plan['db'];
  if (manifest?.governDb) db = await databasePlan(manifest, source, options, log, env);
  else if (manifest?.dss.nodeType === 'govern' || target.info?.nodeType === 'govern') {
    log.warn(
      { source: sourceName(source) },
      'Govern node without a database dump: only DATA_DIR is restored',
    );
  }

  return {
    source,
    ...(manifest ? { manifest } : {}),
    target,
    ...(install ? { install } : {}),
    dssRunning,
    ...(db ? { db } : {}),
    ...(owner ? { owner } : {}),
  };
}

async function copyVersion(
  source: Extract<RestoreSource, { kind: 'copy' }>,
): Promise<DssVersion | undefined> {
  const text = await readCopyFile(source.copy, 'dss-version.json');
  if (text === undefined) {
    throw new DssnapError('BACKUP_INVALID', `Backup ${source.backup.manifest.id} has no dss-version.json`, {
      hint: 'The copy is damaged or is not of a DSS data directory: run dssnap verify on it.',
      details: { backupId: source.backup.manifest.id },
    });
  }
  return parseDssVersion(text, `${source.copy.location}: dss-version.json`);
}

function manifestVersion(manifest: Manifest | undefined): DssVersion | undefined {
  return manifest
    ? { productVersion: manifest.dss.productVersion, confVersion: manifest.dss.confVersion }
    : undefined;
}

async function ownerOf(spec: string): Promise<{ uid: number; gid: number; user: string }> {
  const { stdout } = await run('id', ['-u', spec]).catch(() => {
    throw new DssnapError('USAGE', `--owner ${spec}: no such user on this host`, {
      hint: 'Give the user DSS runs as (it must exist: useradd it first).',
    });
  });
  const uid = Number(stdout.trim());
  const gid = Number((await run('id', ['-g', spec])).stdout.trim());
  return { uid, gid, user: (await userNameOf(uid)) ?? spec };
}

async function databasePlan(
  manifest: Manifest,
  source: RestoreSource,
  options: RestoreOptions,
  log: Logger,
  env: NodeJS.ProcessEnv,
): Promise<Plan['db']> {
  const dump = manifest.governDb!;
  if (!existsSync(dump.location)) {
    throw new DssnapError(
      'BACKUP_INVALID',
      `The database dump of backup ${manifest.id} is gone: ${dump.location}`,
      {
        hint: 'Restore another backup; dssnap verify --all tells which are complete.',
        details: { dump: dump.location },
      },
    );
  }
  const { sha256 } = await hashFile(dump.location);
  if (sha256 !== dump.sha256) {
    throw new DssnapError(
      'BACKUP_INVALID',
      `The database dump ${dump.location} does not match its recorded checksum`,
      {
        hint: 'The dump is damaged: restore another backup. Nothing was changed.',
        details: { dump: dump.location },
      },
    );
  }
  await listDump(dump.location);
  // The target database: --govern-db, or the one the backup's own dip.properties names.
  let db: GovernDb | undefined;
  if (options.governDb) {
    db = await resolveGovernDb({
      connection: options.governDb,
      ...(options.governDbPasswordFile ? { passwordFile: options.governDbPasswordFile } : {}),
      env,
    });
  } else if (source.kind === 'copy') {
    const properties = await readCopyFile(source.copy, 'config/dip.properties');
    if (properties !== undefined) {
      db = await resolveGovernDb({
        dipProperties: properties,
        ...(options.governDbPasswordFile ? { passwordFile: options.governDbPasswordFile } : {}),
        env,
      });
    }
  }
  if (!db) {
    throw new DssnapError(
      'CONFIG_INVALID',
      `Backup ${manifest.id} holds a Govern database dump, but no target database is known`,
      {
        hint: 'Give --govern-db postgresql://USER@HOST:PORT/DATABASE (password in DSSNAP_GOVERN_DB_PASSWORD or --govern-db-password-file).',
      },
    );
  }
  await checkDatabase(db, { log });
  const wasEmpty = await isDatabaseEmpty(db, { log });
  if (!wasEmpty && !options.clean) {
    throw new DssnapError('DATABASE_NOT_EMPTY', `The Govern database ${describeDb(db)} is not empty`, {
      hint: 'Add --clean to replace its content (it is dumped aside first, and the restore runs in one transaction), or restore into an empty database. Nothing was changed.',
      details: { database: describeDb(db) },
    });
  }
  return {
    db,
    dump: dump.location,
    wasEmpty,
    ...(options.governDbPasswordFile ? { passwordFile: options.governDbPasswordFile } : {}),
  };
}

interface ExecuteContext {
  log: Logger;
  env: NodeJS.ProcessEnv;
  meta: RestoreJournalMeta;
}

async function execute(
  options: RestoreOptions,
  plan: Plan,
  runner: Runner,
  ctx: ExecuteContext,
  startedAt: Date,
): Promise<Omit<RestoreResult, 'steps' | 'durationMs' | 'exitCode' | 'warnings'>> {
  const { target, source } = plan;
  const handlers = restoreUndoHandlers({
    log: ctx.log,
    runId: runner.runId,
    provider: async () => {
      if (source.kind !== 'snapshot') throw new DssnapError('INTERNAL', 'No provider in this restore');
      return source.provider;
    },
    startTimeoutMs: ctx.meta.startTimeoutMs,
    stopTimeoutMs: ctx.meta.stopTimeoutMs,
    env: ctx.env,
  });
  const undo =
    (kind: keyof typeof handlers, intent: unknown) =>
    (record?: unknown): Promise<void> =>
      handlers[kind]({
        intent: intent as Json,
        record: record as Json | undefined,
        done: record !== undefined,
      });

  const aside = target.state === 'missing' ? undefined : asidePath(target, startedAt);
  let verifiedEntries = 0;
  let restoredRoot: string;
  const snapshotDir = await openSource(plan, runner, ctx, options, undo);

  if (target.strategy === 'copy-aside') {
    // DATA_DIR is a mount point: check the backup before touching it, then copy its content aside.
    if (source.kind === 'copy' && source.indexPath) {
      verifiedEntries = await runner.step({
        kind: 'verify-backup',
        title: `Check the copy of ${source.backup.manifest.id} against its file index`,
        run: () => checkTree(source.indexPath!, walkCopy(source), sourceName(source)),
      });
    }
    await stopIfRunning(options, plan, runner, ctx, undo);
    if (target.state === 'data-dir') {
      const intent = { target: target.path, aside: aside! };
      await runner.step({
        kind: RestoreStep.copyAside,
        title: `Copy ${target.path} (a mount point) aside to ${aside}`,
        intent,
        run: (signal) => copyTree(target.path, aside!, { signal }),
        undo: () => undo(RestoreStep.copyAside, intent)(),
      });
    }
    const intent = { target: target.path, ...(target.state === 'data-dir' ? { aside: aside! } : {}) };
    await runner.step({
      kind: RestoreStep.replace,
      title: `Replace the content of ${target.path} with ${sourceName(source)}`,
      intent,
      run: async (signal) => {
        await emptyDirectory(target.path);
        await fillFrom(source, snapshotDir, target.path, options, signal);
      },
      undo: () => undo(RestoreStep.replace, intent)(),
    });
    await closeSource(runner);
    restoredRoot = target.path;
    verifiedEntries = await verifyRestored(plan, restoredRoot, runner);
  } else {
    // Prepare the restored tree beside DATA_DIR and check it while DSS still runs.
    const staging = stagingPath(target, runner.runId);
    const stageIntent = { staging };
    await runner.step({
      kind: RestoreStep.stage,
      title: `Restore ${sourceName(source)} into ${staging}`,
      intent: stageIntent,
      run: async (signal) => {
        await createStaging(staging, target.subvolume);
        await fillFrom(source, snapshotDir, staging, options, signal);
      },
      undo: () => undo(RestoreStep.stage, stageIntent)(),
    });
    await closeSource(runner);
    verifiedEntries = await verifyRestored(plan, staging, runner);
    if (plan.owner) await chownStep(runner, staging, plan.owner);
    await stopIfRunning(options, plan, runner, ctx, undo);
    const swapIntent = { target: target.path, staging, ...(aside ? { aside } : {}) };
    await runner.step({
      kind: RestoreStep.swap,
      title: aside
        ? `Move ${target.path} aside to ${aside} and the restored tree into place`
        : `Move the restored tree to ${target.path}`,
      intent: swapIntent,
      run: () => swapIn(swapIntent),
      undo: () => undo(RestoreStep.swap, swapIntent)(),
    });
    restoredRoot = target.path;
  }
  if (target.strategy === 'copy-aside' && plan.owner) await chownStep(runner, restoredRoot, plan.owner);

  let database: RestoreResult['database'];
  if (plan.db) database = await restoreDatabase(plan, runner, ctx, aside ?? asidePath(target, startedAt));

  let installer: RestoreResult['installer'];
  let followUp: FollowUp | undefined;
  if (plan.install) {
    const info = await inspectDataDir(restoredRoot);
    installer = await runner.step({
      kind: 'installer',
      title: `Run ${plan.install.installer} -d ${restoredRoot} -u`,
      run: (signal) =>
        runInstaller(plan.install!, info, {
          log: ctx.log,
          signal,
          timeoutMs: parseDuration(options.installerTimeout, '--installer-timeout'),
        }),
    });
    followUp = await runner.step({
      kind: 'follow-up',
      title: 'List the code environments to rebuild and save the Python package list',
      run: () => prepareFollowUp(info, plan.install!.path),
    });
  }

  let dssStarted = false;
  if (options.start) {
    const intent = { dataDir: restoredRoot };
    await runner.step({
      kind: RestoreStep.startDss,
      title: 'Start DSS (bin/dss start)',
      intent,
      run: async (signal) => {
        const info = await inspectDataDir(restoredRoot);
        await startDss(info, { timeoutMs: ctx.meta.startTimeoutMs, signal, log: ctx.log });
      },
      undo: () => undo(RestoreStep.startDss, intent)(),
    });
    dssStarted = true;
  }

  // Done: nothing of it is to be undone any more.
  for (const kind of [
    RestoreStep.startDss,
    RestoreStep.restoreDb,
    RestoreStep.swap,
    RestoreStep.replace,
    RestoreStep.copyAside,
    RestoreStep.stage,
    RestoreStep.stopDss,
  ]) {
    runner.dropUndo(kind);
  }
  const manifest = plan.manifest;
  if (manifest?.dss.nodeType === 'govern' && !manifest.governDb) {
    runner.addWarning('This Govern backup has no database dump: only DATA_DIR was restored');
  }
  if (target.state === 'data-dir' && aside) {
    ctx.log.info({ aside }, 'The previous DATA_DIR is kept aside; remove it once the restore is confirmed');
  }
  return {
    runId: runner.runId,
    source: sourceName(source),
    ...(manifest ? { backupId: manifest.id } : {}),
    dataDir: target.path,
    strategy: target.strategy,
    ...(aside && target.state !== 'missing' && existsSync(aside) ? { movedAside: aside } : {}),
    verifiedEntries,
    ...(database ? { database } : {}),
    ...(installer ? { installer } : {}),
    dssStarted,
    followUp: followUp?.instructions ?? [],
  };
}

/**
 * Make a snapshot source readable: expose it (and mount a device read-only), as journaled steps whose
 * undo releases it. Returns the directory holding DATA_DIR; undefined for a copy source.
 */
async function openSource(
  plan: Plan,
  runner: Runner,
  ctx: ExecuteContext,
  options: RestoreOptions,
  undo: (kind: 'expose-snapshot' | 'mount-snapshot', intent: unknown) => (record?: unknown) => Promise<void>,
): Promise<string | undefined> {
  const { source } = plan;
  if (source.kind !== 'snapshot') return undefined;
  const { provider, snapshot } = source;
  const tags = {
    [TagKey.runId]: runner.runId,
    [TagKey.dataDir]: ctx.meta.dataDir,
    [TagKey.role]: 'exposure',
  };
  const exposeIntent = { snapshot };
  const exposure = await runner.step({
    kind: RestoreStep.expose,
    title: `Expose ${provider.id} snapshot ${snapshot.id} on this host`,
    intent: exposeIntent as unknown as Json,
    run: () => provider.expose(snapshot, tags),
    record: (result) => ({ exposure: result }) as unknown as Json,
    undo: (result) => undo(RestoreStep.expose, exposeIntent)(result ? { exposure: result } : undefined),
  });
  let root = exposure.directory;
  if (!root) {
    if (!exposure.device) {
      throw new DssnapError(
        'PROVIDER_ERROR',
        `Provider ${provider.id} exposed neither a directory nor a device`,
      );
    }
    const mountIntent = {
      mountPoint: join(options.mountRoot, runner.runId, snapshot.id.replace(/[^A-Za-z0-9._-]/g, '_')),
      device: exposure.device,
      fsType:
        exposure.fsType ?? (await run('blkid', ['-o', 'value', '-s', 'TYPE', exposure.device])).stdout.trim(),
    };
    await runner.step({
      kind: RestoreStep.mount,
      title: `Mount ${exposure.device} read-only at ${mountIntent.mountPoint}`,
      intent: mountIntent,
      run: () => mountReadOnly(mountIntent.device, mountIntent.mountPoint, mountIntent.fsType),
      undo: () => undo(RestoreStep.mount, mountIntent)(),
    });
    root = mountIntent.mountPoint;
  }
  return join(root, await locateDataDir(source, root, options));
}

/** Release what `openSource` exposed and mounted. */
async function closeSource(runner: Runner): Promise<void> {
  await runner.undoNow(RestoreStep.mount);
  await runner.undoNow(RestoreStep.expose);
}

/** Fill `dir` from the source: the backup's copy, or the opened snapshot's directory. */
async function fillFrom(
  source: RestoreSource,
  snapshotDir: string | undefined,
  dir: string,
  options: RestoreOptions,
  signal: AbortSignal,
): Promise<void> {
  if (source.kind === 'copy') {
    await materializeCopy(source.copy, dir, {
      signal,
      ...(options.sshCommand ? { sshCommand: options.sshCommand } : {}),
    });
  } else {
    await copyTree(snapshotDir!, dir, { signal });
  }
}

/** Where DATA_DIR is inside an exposed snapshot: --path-in-snapshot, its root, or where locate() says. */
async function locateDataDir(
  source: Extract<RestoreSource, { kind: 'snapshot' }>,
  root: string,
  options: RestoreOptions,
): Promise<string> {
  if (options.pathInSnapshot !== undefined) return options.pathInSnapshot.replace(/^\/+/, '');
  if (existsSync(join(root, 'dss-version.json'))) return '';
  const dataDir = source.snapshot.tags[TagKey.dataDir];
  if (dataDir && existsSync(dataDir)) {
    const volume = (await source.provider.locate(dataDir)).find((v) => v.id === source.snapshot.volumeId);
    if (volume && existsSync(join(root, volume.relativePath, 'dss-version.json'))) return volume.relativePath;
  }
  throw new DssnapError('NOT_FOUND', `Cannot find the DSS data directory inside ${sourceName(source)}`, {
    hint: "Give --path-in-snapshot with the path of DATA_DIR relative to the root of the snapshot's filesystem.",
  });
}

function walkCopy(source: Extract<RestoreSource, { kind: 'copy' }>): AsyncIterable<IndexEntry> {
  return source.copy.format === 'tar' ? walkArchive(source.copy.location) : walkTree(source.copy.location);
}

/** Compare a tree with the file index; BACKUP_INVALID with a summary when they differ. Returns entries checked. */
async function checkTree(
  indexPath: string,
  actual: AsyncIterable<IndexEntry>,
  what: string,
): Promise<number> {
  const differences = await compareEntries(readIndex(indexPath), actual, { limit: 5 });
  if (!isClean(differences)) throw damagedBackup(what, differences);
  return differences.counts.checked;
}

function damagedBackup(what: string, differences: TreeDifferences): DssnapError {
  return new DssnapError('BACKUP_INVALID', describeDifferences(what, differences), {
    hint: 'The backup is damaged; restore another one (dssnap verify --all tells which are sound). The live DATA_DIR was not touched.',
    details: { counts: differences.counts },
  });
}

/** The restored tree against the index (when the backup has one) and the DSS layout/version checks. */
async function verifyRestored(plan: Plan, root: string, runner: Runner): Promise<number> {
  return runner.step({
    kind: 'verify-restored',
    title: `Check the restored tree ${root}`,
    run: async () => {
      let checked = 0;
      if (plan.source.kind === 'copy' && plan.source.indexPath) {
        checked = await checkTree(
          plan.source.indexPath,
          walkTree(root),
          `The restore of ${sourceName(plan.source)}`,
        );
      }
      let info: DataDirInfo;
      try {
        info = await inspectDataDir(root);
      } catch (error) {
        if (!isDssnapError(error)) throw error;
        throw new DssnapError(
          'BACKUP_INVALID',
          `${sourceName(plan.source)} is not a complete DSS data directory: ${error.message}`,
          {
            cause: error,
            hint: 'The live DATA_DIR was not touched. Restore another backup.',
          },
        );
      }
      const manifest = plan.manifest;
      if (manifest && info.version.productVersion !== manifest.dss.productVersion) {
        throw new DssnapError(
          'BACKUP_INVALID',
          `The restored tree is DSS ${info.version.productVersion}, the catalog says ${manifest.dss.productVersion}`,
          { hint: 'The catalog and the copy disagree: the copy was replaced. Restore another backup.' },
        );
      }
      if (plan.install)
        checkVersionOrder(info.version, plan.install.version, `the installation ${plan.install.path}`);
      return checked;
    },
  });
}

async function chownStep(runner: Runner, root: string, owner: NonNullable<Plan['owner']>): Promise<void> {
  await runner.step({
    kind: 'chown',
    title: `Give ${root} to ${owner.user} (${owner.uid}:${owner.gid})`,
    run: async () => {
      await run(requireTool('chown', 'coreutils'), ['-hR', `${owner.uid}:${owner.gid}`, root]);
      await chown(root, owner.uid, owner.gid);
    },
  });
}

async function stopIfRunning(
  options: RestoreOptions,
  plan: Plan,
  runner: Runner,
  ctx: ExecuteContext,
  undo: (kind: typeof RestoreStep.stopDss, intent: unknown) => () => Promise<void>,
): Promise<void> {
  if (!plan.dssRunning || !plan.target.info) return;
  const info = plan.target.info;
  await runner.step({
    kind: 'check-jobs',
    title: 'Check that no DSS job or scenario is running',
    run: (signal) =>
      jobsCheck(
        {
          force: options.force,
          ...(options.dssUrl ? { dssUrl: options.dssUrl } : {}),
          ...(options.dssApiKeyFile ? { dssApiKeyFile: options.dssApiKeyFile } : {}),
          ...(options.waitForJobs !== undefined ? { waitForJobs: options.waitForJobs } : {}),
        },
        { log: ctx.log, env: ctx.env },
        true,
      )(signal),
  });
  const intent = { dataDir: info.path };
  await runner.step({
    kind: RestoreStep.stopDss,
    title: 'Stop DSS (bin/dss stop)',
    intent,
    run: async (signal) => {
      await stopDss(info, { timeoutMs: ctx.meta.stopTimeoutMs, signal, log: ctx.log });
    },
    undo: () => undo(RestoreStep.stopDss, intent)(),
  });
}

async function restoreDatabase(
  plan: Plan,
  runner: Runner,
  ctx: ExecuteContext,
  asideBase: string,
): Promise<RestoreResult['database']> {
  const { db, dump, wasEmpty, passwordFile } = plan.db!;
  let safetyDump: string | undefined;
  if (!wasEmpty) {
    const path = `${asideBase}.govern.pgdump`;
    await runner.step({
      kind: 'dump-database-aside',
      title: `Dump ${describeDb(db)} aside to ${path} before replacing it`,
      run: (signal) => dumpDatabase(db, path, { signal, log: ctx.log }),
    });
    safetyDump = path;
  }
  const { password: _password, ...withoutPassword } = db;
  const intent: RestoreDbIntent = {
    db: withoutPassword,
    ...(passwordFile ? { passwordFile } : {}),
    wasEmpty,
    ...(safetyDump ? { safetyDump } : {}),
  };
  await runner.step({
    kind: RestoreStep.restoreDb,
    title: `Restore the Govern database ${describeDb(db)} from ${dump}`,
    intent: intent as unknown as Json,
    run: (signal) => restoreDump(db, dump, { clean: !wasEmpty, signal, log: ctx.log }),
    // A failed pg_restore changed nothing (one transaction): only a finished one is undone, with the
    // password this run holds (recovery in another process reads it from the env or the file again).
    undo: async (done) => {
      if (done === undefined) return;
      if (wasEmpty) await emptyDatabase(db, { log: ctx.log });
      else if (safetyDump) await restoreDump(db, safetyDump, { clean: true, log: ctx.log });
    },
  });
  return { database: describeDb(db), restored: true, ...(safetyDump ? { safetyDump } : {}) };
}
