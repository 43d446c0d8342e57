/**
 * `dssnap prune` (and `backup --prune`): apply a retention policy to the backups of each DATA_DIR —
 * rsync generations, archives, snapshot-only backups, and retained snapshots of any provider — and remove
 * what it does not keep: the copy, the database dump, the file index, the retained snapshots (through
 * their provider) and the manifest.
 *
 * Never removed: the newest backup of each DATA_DIR, a backup a live restore or verify is reading, and,
 * while another run holds a DATA_DIR's lock, its newest generation (the base that run links to).
 * A removal first hides the manifest (`.<id>.json.pruning`, so the backup is no longer listed as
 * restorable), then deletes the parts, then the marker: a prune killed half-way is finished by the next.
 */
import { readdir, readFile, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { BackupOptions } from '../config.js';
import { parseDestination } from '../copy/destination.js';
import { remoteRemove } from '../copy/remote-shell.js';
import { DssnapError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { isLockHeld, listLocks } from '../procedure/lock.js';
import { loadProvider } from '../provider/registry.js';
import { withRetries } from '../provider/retry.js';
import { TagKey } from '../provider/types.js';
import { type CatalogedBackup, type CatalogLocation, catalogDirs, listBackups } from './find.js';
import { indexFileName } from './hashes.js';
import { backupsInUse } from './in-use.js';
import type { Manifest } from './manifest.js';
import {
  type ApplyPolicyOptions,
  applyPolicy,
  isEmptyPolicy,
  localTimeIn,
  type RetentionPolicy,
  validatePolicy,
} from './retention.js';

export interface PruneOptions extends CatalogLocation, ApplyPolicyOptions {
  policy: RetentionPolicy;
  /** Only this DATA_DIR's backups; all DATA_DIRs of the catalogs otherwise. */
  dataDir?: string;
  dryRun?: boolean;
  /** Also prune retained snapshots of this provider that no manifest names. */
  provider?: string;
  /** Provider settings (snapshot dir…) for every provider that deletes a snapshot. */
  providerSettings?: Record<string, unknown>;
  sshCommand?: string;
  /** The run that holds the DATA_DIR's lock on purpose (`backup --prune`): its lock does not protect. */
  ownRunId?: string;
  log: Logger;
}

export interface PruneItem {
  id: string;
  time: string;
  kind: 'backup' | 'snapshot';
  /** What removing it deletes: the copy, the dump, snapshots… */
  parts: string[];
}

export interface PruneGroup {
  dataDir: string;
  keep: (PruneItem & { reasons: string[] })[];
  remove: (PruneItem & { removed: boolean; error?: string })[];
}

export interface PruneResult {
  dryRun: boolean;
  groups: PruneGroup[];
  removed: number;
  failed: number;
  /** `backup --prune` only: the prune could not run at all (the backup itself is done). */
  error?: string;
}

interface Candidate extends PruneItem {
  dataDir: string;
  backup?: CatalogedBackup;
  snapshot?: { provider: string; id: string; volumeId: string; createdAt: string };
}

/**
 * Apply the policy and remove (unless `dryRun`) what it does not keep. Returns, per DATA_DIR, what is
 * kept (with the reasons) and what was removed. A part that cannot be removed is reported in the result
 * (`failed`), the others still go. Throws USAGE for an invalid policy or time zone, before removing anything.
 */
export async function pruneBackups(options: PruneOptions): Promise<PruneResult> {
  const log = options.log;
  if (!options.dryRun) await finishInterruptedPrunes(options);
  const candidates = await collect(options);
  const inUse = backupsInUse(options.stateDir);
  const liveLocks = listLocks(options.stateDir)
    .map(({ info }) => info)
    .filter((info) => isLockHeld(info) && info.runId !== options.ownRunId);

  const groups: PruneGroup[] = [];
  const byDataDir = new Map<string, Candidate[]>();
  for (const candidate of candidates) {
    byDataDir.set(candidate.dataDir, [...(byDataDir.get(candidate.dataDir) ?? []), candidate]);
  }
  for (const [dataDir, items] of [...byDataDir].sort(([a], [b]) => a.localeCompare(b))) {
    const decision = applyPolicy(
      items,
      options.policy,
      options.timeZone ? { timeZone: options.timeZone } : {},
    );
    const reasons = new Map(decision.reasons.map((r) => [r.id, r.matches]));
    const protectedIds = new Map<string, string>();
    const newest = decision.keep[0] ?? decision.remove[0];
    if (newest) protectedIds.set(newest.id, 'newest backup of this DATA_DIR (never pruned)');
    for (const item of items) {
      const purposes = inUse.get(item.id);
      if (purposes) protectedIds.set(item.id, `in use by a running ${purposes.join(', ')}`);
    }
    if (liveLocks.some((info) => info.dataDir === dataDir)) {
      const base = [...items]
        .filter((i) => i.backup?.manifest.copy?.format === 'rsync')
        .sort((a, b) => b.time.localeCompare(a.time))[0];
      if (base) protectedIds.set(base.id, 'newest generation, the base of a backup running now');
    }
    const group: PruneGroup = { dataDir, keep: [], remove: [] };
    for (const item of decision.keep)
      group.keep.push({ ...strip(item), reasons: reasons.get(item.id) ?? [] });
    for (const item of decision.remove) {
      const protection = protectedIds.get(item.id);
      if (protection) {
        group.keep.push({ ...strip(item), reasons: [protection] });
        continue;
      }
      if (options.dryRun) {
        group.remove.push({ ...strip(item), removed: false });
        continue;
      }
      try {
        await removeCandidate(item, options);
        group.remove.push({ ...strip(item), removed: true });
        log.info({ backupId: item.id, dataDir }, 'Backup pruned');
      } catch (error) {
        group.remove.push({ ...strip(item), removed: false, error: errorMessage(error) });
        log.error({ backupId: item.id, err: error }, 'Could not prune a backup');
      }
    }
    group.keep.sort((a, b) => b.time.localeCompare(a.time));
    groups.push(group);
  }
  const removed = groups.reduce((n, g) => n + g.remove.filter((r) => r.removed).length, 0);
  const failed = groups.reduce((n, g) => n + g.remove.filter((r) => r.error !== undefined).length, 0);
  return { dryRun: options.dryRun ?? false, groups, removed, failed };
}

function strip(candidate: Candidate): PruneItem {
  return { id: candidate.id, time: candidate.time, kind: candidate.kind, parts: candidate.parts };
}

/** The backups (and unreferenced retained snapshots) the policy applies to. */
async function collect(options: PruneOptions): Promise<Candidate[]> {
  const dataDir = options.dataDir ? resolve(options.dataDir) : undefined;
  const backups = await listBackups(options, dataDir);
  const candidates: Candidate[] = backups.map((backup) => ({
    id: backup.manifest.id,
    time: backupTime(backup.manifest),
    kind: 'backup',
    dataDir: backup.manifest.dataDir,
    parts: partsOf(backup),
    backup,
  }));
  if (options.provider) {
    const named = new Set(backups.flatMap((b) => b.manifest.snapshots.map((s) => `${s.provider}:${s.id}`)));
    const provider = await loadProvider(options.provider, {
      stateDir: options.stateDir,
      settings: options.providerSettings ?? {},
    });
    for (const snapshot of await provider.list({ retained: true, ...(dataDir ? { dataDir } : {}) })) {
      if (named.has(`${provider.id}:${snapshot.id}`)) continue;
      candidates.push({
        id: snapshot.id,
        time: snapshot.createdAt,
        kind: 'snapshot',
        dataDir: snapshot.tags[TagKey.dataDir] ?? '(unknown DATA_DIR)',
        parts: [`${provider.id} snapshot ${snapshot.id}`],
        snapshot: {
          provider: provider.id,
          id: snapshot.id,
          volumeId: snapshot.volumeId,
          createdAt: snapshot.createdAt,
        },
      });
    }
  }
  return candidates;
}

/** The instant a backup stands for: its snapshot instant, or the start of a cold run. */
function backupTime(manifest: Manifest): string {
  return manifest.snapshots[0]?.createdAt || manifest.startedAt;
}

function partsOf(backup: CatalogedBackup): string[] {
  const m = backup.manifest;
  return [
    ...(m.copy ? [m.copy.location] : []),
    ...(m.governDb ? [m.governDb.location] : []),
    ...m.snapshots.filter((s) => s.retained).map((s) => `${s.provider} snapshot ${s.id}`),
  ];
}

async function removeCandidate(candidate: Candidate, options: PruneOptions): Promise<void> {
  if (candidate.backup) {
    const { manifest, catalogDir } = candidate.backup;
    const marker = join(catalogDir, `.${manifest.id}.json.pruning`);
    // Hidden first: from now on the backup is not listed, and a killed prune is finished by the next.
    await rename(join(catalogDir, `${manifest.id}.json`), marker);
    await removeParts(manifest, catalogDir, options);
    await rm(marker, { force: true });
    return;
  }
  const snapshot = candidate.snapshot!;
  await deleteSnapshot(snapshot, options);
}

async function removeParts(manifest: Manifest, catalogDir: string, options: PruneOptions): Promise<void> {
  if (manifest.copy) await removeLocation(manifest.copy.location, options);
  if (manifest.governDb) await removeLocation(manifest.governDb.location, options);
  for (const snapshot of manifest.snapshots.filter((s) => s.retained))
    await deleteSnapshot(snapshot, options);
  await rm(join(catalogDir, indexFileName(manifest.id)), { force: true });
}

async function removeLocation(location: string, options: PruneOptions): Promise<void> {
  const parsed = parseDestination(location);
  if (parsed.kind === 'remote') {
    await remoteRemove(
      parsed.host,
      parsed.path,
      options.sshCommand ? { sshCommand: options.sshCommand } : {},
    );
    return;
  }
  await rm(parsed.path, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
}

async function deleteSnapshot(
  snapshot: { provider: string; id: string; volumeId: string; createdAt: string },
  options: PruneOptions,
): Promise<void> {
  const provider = withRetries(
    await loadProvider(snapshot.provider, {
      stateDir: options.stateDir,
      settings: options.providerSettings ?? {},
    }),
    { log: options.log },
  );
  const known = (await provider.list({})).find((s) => s.id === snapshot.id);
  await provider.ensureDeleted(
    known ?? {
      id: snapshot.id,
      provider: provider.id,
      volumeId: snapshot.volumeId,
      createdAt: snapshot.createdAt,
      tags: {},
    },
  );
}

/** Finish the removals a killed prune left (hidden `.pruning` manifests). */
async function finishInterruptedPrunes(options: PruneOptions): Promise<void> {
  for (const dir of catalogDirs(options)) {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.endsWith('.json.pruning'))) {
      const marker = join(dir, name);
      try {
        const manifest = JSON.parse(await readFile(marker, 'utf8')) as Manifest;
        await removeParts(manifest, dir, options);
        await rm(marker, { force: true });
        options.log.info({ backupId: manifest.id }, 'Finished an interrupted prune');
      } catch (error) {
        options.log.warn({ marker, err: error }, 'Could not finish an interrupted prune');
      }
    }
  }
}

/** The keep-* options as a policy. Throws USAGE when none is set (nothing would tell what to keep). */
export function policyOf(options: KeepOptions): RetentionPolicy {
  const policy: RetentionPolicy = {
    ...(options.keepLast !== undefined ? { last: options.keepLast } : {}),
    ...(options.keepHourly !== undefined ? { hourly: options.keepHourly } : {}),
    ...(options.keepDaily !== undefined ? { daily: options.keepDaily } : {}),
    ...(options.keepWeekly !== undefined ? { weekly: options.keepWeekly } : {}),
    ...(options.keepMonthly !== undefined ? { monthly: options.keepMonthly } : {}),
    ...(options.keepYearly !== undefined ? { yearly: options.keepYearly } : {}),
  };
  validatePolicy(policy);
  if (isEmptyPolicy(policy)) {
    throw new DssnapError(
      'USAGE',
      'No retention policy: give at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly',
      {
        hint: "e.g. --keep-last 3 --keep-daily 7 --keep-weekly 4 --keep-monthly 6 (or 'keep-daily: 7' in the config file).",
      },
    );
  }
  if (options.timeZone) localTimeIn(options.timeZone);
  return policy;
}

export interface KeepOptions {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  timeZone?: string;
}

/**
 * `backup --prune`: apply the configured policy to this DATA_DIR's backups in the run's destination,
 * while the run still holds the lock. Never throws: a prune that cannot run is returned as `error`.
 */
export async function pruneAfterBackup(
  options: BackupOptions,
  runId: string,
  log: Logger,
): Promise<PruneResult> {
  try {
    return await pruneBackups({
      ...(options.to ? { to: options.to } : {}),
      stateDir: options.stateDir,
      dataDir: options.dataDir,
      policy: policyOf(options),
      ...(options.timeZone ? { timeZone: options.timeZone } : {}),
      providerSettings: {
        ...options.providerOptions,
        ...(options.snapshotDir ? { snapshotDir: options.snapshotDir } : {}),
      },
      ...(options.sshCommand ? { sshCommand: options.sshCommand } : {}),
      ownRunId: runId,
      log,
    });
  } catch (error) {
    log.warn({ err: error }, 'The prune after the backup failed; the backup itself is done');
    return { dryRun: false, groups: [], removed: 0, failed: 0, error: errorMessage(error) };
  }
}
