/**
 * `dssnap verify`: re-read a backup and compare it with what its run recorded — every file's content
 * against the file index (missing, changed and extra files), the Govern database dump against its
 * checksum and `pg_restore --list`, a Govern backup without its dump reported incomplete. With
 * `restoreTest`, the copy is also restored into a temporary directory, compared with the index again and
 * checked as a DSS data directory (layout, version), then removed.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDestination } from '../copy/destination.js';
import { inspectDataDir } from '../dss/layout.js';
import { errorMessage, isDssnapError } from '../errors.js';
import { hashFile, listDump } from '../govern/database.js';
import type { Logger } from '../log.js';
import { loadProvider } from '../provider/registry.js';
import { materializeCopy } from '../restore/materialize.js';
import type { CatalogedBackup } from './find.js';
import {
  compareEntries,
  type IndexEntry,
  isClean,
  readIndex,
  type TreeDifferences,
  walkArchive,
  walkTree,
} from './hashes.js';
import { markInUse } from './in-use.js';

export type VerifyStatus = 'ok' | 'damaged' | 'incomplete' | 'unverifiable';

export interface BackupVerification {
  id: string;
  dataDir: string;
  status: VerifyStatus;
  /** What is wrong (damaged, incomplete) or could not be checked (unverifiable). */
  problems: string[];
  copy?: { location: string; format: 'rsync' | 'tar'; differences?: TreeDifferences };
  database?: { location: string; ok: boolean; entries?: number };
  restoreTest?: { directory: string; ok: boolean; differences?: TreeDifferences; problems: string[] };
  durationMs: number;
}

export interface VerifyOptions {
  stateDir: string;
  restoreTest?: boolean;
  /** Where the restore test unpacks (default: the system temp dir). */
  tempDir?: string;
  /** Provider settings, to check the retained snapshots of snapshot-only backups. */
  providerSettings?: Record<string, unknown>;
  signal?: AbortSignal;
  log: Logger;
}

const severity: Record<VerifyStatus, number> = { ok: 0, unverifiable: 1, incomplete: 2, damaged: 3 };

/**
 * Verify one backup. Returns its report (never throws for what it finds wrong: that is the report);
 * throws only when it cannot run at all (interrupted).
 */
export async function verifyBackup(
  backup: CatalogedBackup,
  options: VerifyOptions,
): Promise<BackupVerification> {
  const started = performance.now();
  const { manifest } = backup;
  const release = markInUse(options.stateDir, manifest.id, 'verify');
  const report: BackupVerification = {
    id: manifest.id,
    dataDir: manifest.dataDir,
    status: 'ok',
    problems: [],
    durationMs: 0,
  };
  const mark = (status: VerifyStatus, problem: string): void => {
    report.problems.push(problem);
    if (severity[status] > severity[report.status]) report.status = status;
  };
  try {
    if (manifest.copy) await verifyCopy(backup, report, mark, options);
    else await verifySnapshots(backup, mark, options);
    await verifyDatabase(backup, report, mark, options);
    if (options.restoreTest && manifest.copy && report.status !== 'damaged') {
      await restoreTest(backup, report, mark, options);
    }
  } catch (error) {
    if (isDssnapError(error) && error.code === 'INTERRUPTED') throw error;
    mark('damaged', errorMessage(error));
  } finally {
    release();
  }
  report.durationMs = Math.round(performance.now() - started);
  options.log.info(
    { backupId: manifest.id, status: report.status, durationMs: report.durationMs },
    'Backup verified',
  );
  return report;
}

type Mark = (status: VerifyStatus, problem: string) => void;

async function verifyCopy(
  backup: CatalogedBackup,
  report: BackupVerification,
  mark: Mark,
  options: VerifyOptions,
): Promise<void> {
  const copy = backup.manifest.copy!;
  report.copy = { location: copy.location, format: copy.format };
  if (parseDestination(copy.location).kind === 'remote') {
    mark('unverifiable', `the copy is on another host (${copy.location}): run verify there`);
    return;
  }
  if (!existsSync(copy.location)) {
    mark('damaged', `the copy ${copy.location} is missing`);
    return;
  }
  const actual = readCopy(copy.location, copy.format, options.signal);
  const index = indexOf(backup);
  if (!index) {
    // No index (an older backup): at least read everything (an archive must decompress and parse).
    for await (const _ of actual);
    mark('unverifiable', 'no file index was recorded for this backup: only its readability was checked');
    return;
  }
  const differences = await compareEntries(readIndex(index), actual);
  report.copy.differences = differences;
  if (!isClean(differences)) mark('damaged', describeDifferences('the copy', differences));
}

async function verifySnapshots(backup: CatalogedBackup, mark: Mark, options: VerifyOptions): Promise<void> {
  const retained = backup.manifest.snapshots.filter((s) => s.retained);
  if (retained.length === 0) {
    mark('damaged', 'the backup has neither a copy nor a retained snapshot');
    return;
  }
  for (const snapshot of retained) {
    try {
      const provider = await loadProvider(snapshot.provider, {
        stateDir: options.stateDir,
        settings: options.providerSettings ?? {},
      });
      const present = (await provider.list({})).some((s) => s.id === snapshot.id);
      if (!present) mark('damaged', `the retained ${snapshot.provider} snapshot ${snapshot.id} is gone`);
    } catch (error) {
      mark(
        'unverifiable',
        `the ${snapshot.provider} snapshot ${snapshot.id} could not be checked: ${errorMessage(error)}`,
      );
    }
  }
}

async function verifyDatabase(
  backup: CatalogedBackup,
  report: BackupVerification,
  mark: Mark,
  options: VerifyOptions,
): Promise<void> {
  const { manifest } = backup;
  const dump = manifest.governDb;
  if (!dump) {
    if (manifest.dss.nodeType === 'govern') {
      mark('incomplete', 'a Govern backup without its PostgreSQL database dump: the pair is incomplete');
    }
    return;
  }
  report.database = { location: dump.location, ok: false };
  if (!existsSync(dump.location)) {
    mark('damaged', `the database dump ${dump.location} is missing`);
    return;
  }
  const { sha256 } = await hashFile(dump.location);
  if (sha256 !== dump.sha256) {
    mark('damaged', `the database dump ${dump.location} does not match its recorded sha256`);
    return;
  }
  try {
    report.database.entries = await listDump(dump.location, options.signal ? { signal: options.signal } : {});
    report.database.ok = true;
  } catch (error) {
    mark('damaged', errorMessage(error));
  }
}

async function restoreTest(
  backup: CatalogedBackup,
  report: BackupVerification,
  mark: Mark,
  options: VerifyOptions,
): Promise<void> {
  const { manifest } = backup;
  const directory = await mkdtemp(join(options.tempDir ?? tmpdir(), `dssnap-restore-test-${manifest.id}-`));
  const test: NonNullable<BackupVerification['restoreTest']> = { directory, ok: false, problems: [] };
  report.restoreTest = test;
  try {
    await materializeCopy(manifest.copy!, directory, options.signal ? { signal: options.signal } : {});
    const index = indexOf(backup);
    if (index) {
      test.differences = await compareEntries(
        readIndex(index),
        walkTree(directory, { signal: options.signal }),
      );
      if (!isClean(test.differences))
        test.problems.push(describeDifferences('the restored tree', test.differences));
    }
    try {
      const info = await inspectDataDir(directory);
      if (
        info.version.productVersion !== manifest.dss.productVersion ||
        info.version.confVersion !== manifest.dss.confVersion
      ) {
        test.problems.push(
          `the restored tree is DSS ${info.version.productVersion} (conf ${info.version.confVersion}), the catalog says ${manifest.dss.productVersion} (conf ${manifest.dss.confVersion})`,
        );
      }
      if (info.nodeType !== manifest.dss.nodeType) {
        test.problems.push(
          `the restored tree is a ${info.nodeType} node, the catalog says ${manifest.dss.nodeType}`,
        );
      }
    } catch (error) {
      test.problems.push(`the restored tree is not a DSS data directory: ${errorMessage(error)}`);
    }
    test.ok = test.problems.length === 0;
    for (const problem of test.problems) mark('damaged', `restore test: ${problem}`);
  } catch (error) {
    if (isDssnapError(error) && error.code === 'INTERRUPTED') throw error;
    mark('damaged', `restore test: ${errorMessage(error)}`);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

function readCopy(
  location: string,
  format: 'rsync' | 'tar',
  signal?: AbortSignal,
): AsyncIterable<IndexEntry> {
  return format === 'tar'
    ? walkArchive(location, signal ? { signal } : {})
    : walkTree(location, signal ? { signal } : {});
}

function indexOf(backup: CatalogedBackup): string | undefined {
  const name = backup.manifest.files?.index;
  if (!name) return undefined;
  const path = join(backup.catalogDir, name);
  return existsSync(path) ? path : undefined;
}

/** `3 missing (config/a.json, …), 1 changed (data/x: content), 2 extra (…)`. */
export function describeDifferences(what: string, differences: TreeDifferences): string {
  const parts: string[] = [];
  const list = (items: string[], total: number): string =>
    `${items.slice(0, 3).join(', ')}${total > 3 ? `, … ${total - 3} more` : ''}`;
  const { missing, extra, changed } = differences.counts;
  if (missing > 0) parts.push(`${missing} missing (${list(differences.missing, missing)})`);
  if (changed > 0) {
    parts.push(
      `${changed} changed (${list(
        differences.changed.map((c) => `${c.path}: ${c.kinds.join('+')}`),
        changed,
      )})`,
    );
  }
  if (extra > 0) parts.push(`${extra} extra (${list(differences.extra, extra)})`);
  return `${what} differs from its file index: ${parts.join(', ')}`;
}

/** The worst status of several reports: what `verify --all` exits with. */
export function worstStatus(reports: readonly BackupVerification[]): VerifyStatus {
  return reports.reduce<VerifyStatus>(
    (worst, r) => (severity[r.status] > severity[worst] ? r.status : worst),
    'ok',
  );
}
