/**
 * Recovery after a run died (SIGKILL, power loss, an undo that failed): read its journal and undo,
 * newest first, every step it began and did not undo, with one handler per step kind that works from
 * the journaled JSON alone (thaw this mount point, unmount that, delete those snapshots, start DSS).
 * The recovery is journaled into the same file; the journal is archived once nothing is left to undo.
 */
import { basename } from 'node:path';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import {
  archiveJournal,
  type JournalRecord,
  leftoverJournals,
  type PendingStep,
  pendingSteps,
  readJournal,
  reopenJournal,
  runEnd,
} from './journal.js';
import { isLockHeld, type LockInfo, listLocks, removeStaleLocksOf } from './lock.js';
import { currentProcessIdentity, mayStillRun } from './process-identity.js';

/** What a recovery handler gets: the step's journaled intent and record, and whether it finished. */
export type RecoveryEntry = PendingStep;

/**
 * Undoes one step of a dead run. Must be idempotent (recovery may run again after a crash of its own)
 * and cope with `done: false`: the step may have done nothing, part, or all of its work.
 */
export type RecoveryHandler = (entry: RecoveryEntry) => Promise<void>;
export type RecoveryHandlers = Readonly<Record<string, RecoveryHandler>>;

export interface RecoveryFailure {
  step: number;
  kind: string;
  error: string;
}

export interface RecoveryResult {
  runId: string;
  path: string;
  /** Kinds of the steps undone, in the order they were undone (newest step first). */
  undone: string[];
  failed: RecoveryFailure[];
  /** Where the journal went once nothing was left to undo. */
  archivedTo?: string;
}

export interface RecoverAllResult {
  recovered: RecoveryResult[];
  /** Journals of runs that still run (their lock or their process is alive). */
  skipped: { path: string; runId: string }[];
}

/**
 * Undo what the run of the journal at `path` left: its pending steps, newest first, each with the
 * handler of its kind. A kind without a handler is a failure, not skipped. Returns when every handler
 * has been tried; the journal is archived only if none failed (so a later recovery retries the
 * failures). The caller makes sure the run is not alive (`isRunLive`); `recoverAll` does.
 */
export async function recoverJournal(
  path: string,
  handlers: RecoveryHandlers,
  log: Logger,
): Promise<RecoveryResult> {
  const records = readJournal(path);
  const journal = reopenJournal(path);
  const runId = journal.runId;
  const result: RecoveryResult = { runId, path, undone: [], failed: [] };
  const pending = pendingSteps(records);
  try {
    if (pending.length > 0) {
      log.warn({ runId, pending: pending.map((entry) => entry.kind) }, 'Recovering a run that did not end');
      journal.append({ type: 'recovery-start', ...currentProcessIdentity() });
    }
    for (const entry of pending) {
      const { step, kind } = entry;
      const handler = Object.hasOwn(handlers, kind) ? handlers[kind] : undefined;
      if (!handler) {
        const error = `No recovery handler for step kind '${kind}' ("${entry.title}"): undo it by hand`;
        log.error({ runId, step, kind }, 'No recovery handler');
        journal.append({ type: 'undo-failed', step, kind, error });
        result.failed.push({ step, kind, error });
        continue;
      }
      journal.append({ type: 'undo-begin', step, kind, by: 'recovery' });
      try {
        await handler(entry);
      } catch (error) {
        log.error({ runId, step, kind, err: error }, 'Recovery of a step failed');
        journal.append({ type: 'undo-failed', step, kind, error: errorMessage(error) });
        result.failed.push({ step, kind, error: errorMessage(error) });
        continue;
      }
      journal.append({ type: 'undo-done', step, kind });
      result.undone.push(kind);
      log.info({ runId, step, kind }, 'Recovered');
    }
    if (result.failed.length === 0 && (pending.length > 0 || runEnd(records) === undefined)) {
      journal.append({ type: 'run-end', phase: 'undone', recovered: true });
    }
  } finally {
    journal.close();
  }
  if (result.failed.length === 0) result.archivedTo = archiveJournal(path);
  return result;
}

/**
 * True while the run of the journal at `path` may still be in progress: a live process holds a lock
 * of that run, or the process that started it still runs (on another host: assumed to run).
 */
export function isRunLive(stateDir: string, path: string): boolean {
  return runIsLive(readJournal(path), listLocks(stateDir));
}

/**
 * Recover every leftover journal whose run is not alive, oldest first, and free the stale locks of the
 * runs fully recovered. A damaged journal yields a failed result and the others still run.
 */
export async function recoverAll(
  stateDir: string,
  handlers: RecoveryHandlers,
  log: Logger,
): Promise<RecoverAllResult> {
  const outcome: RecoverAllResult = { recovered: [], skipped: [] };
  for (const path of leftoverJournals(stateDir)) {
    let records: JournalRecord[];
    try {
      records = readJournal(path);
    } catch (error) {
      log.error({ path, err: error }, 'Journal unreadable');
      outcome.recovered.push({
        runId: basename(path, '.jsonl'),
        path,
        undone: [],
        failed: [{ step: 0, kind: 'journal', error: errorMessage(error) }],
      });
      continue;
    }
    const runId = records[0]?.runId ?? basename(path, '.jsonl');
    if (runIsLive(records, listLocks(stateDir))) {
      log.info({ path, runId }, 'Run still in progress: not recovered');
      outcome.skipped.push({ path, runId });
      continue;
    }
    const result = await recoverJournal(path, handlers, log);
    if (result.failed.length === 0) removeStaleLocksOf(stateDir, result.runId);
    outcome.recovered.push(result);
  }
  return outcome;
}

function runIsLive(records: readonly JournalRecord[], locks: readonly { info: LockInfo }[]): boolean {
  const start = records[0];
  if (!start) return false;
  if (locks.some(({ info }) => info.runId === start.runId && isLockHeld(info))) return true;
  return start.type === 'run-start' && mayStillRun(start);
}
