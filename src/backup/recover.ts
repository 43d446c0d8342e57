/**
 * `dssnap recover`: undo what dead runs left, from their journals. Each journal's run-start record
 * names the DATA_DIR and provider, from which the same undo handlers as a live run are rebuilt.
 */
import { inspectDataDir } from '../dss/layout.js';
import type { Logger } from '../log.js';
import { journalPath, leftoverJournals, readJournal } from '../procedure/journal.js';
import { removeStaleLocksOf } from '../procedure/lock.js';
import { isRunLive, type RecoveryResult, recoverJournal } from '../procedure/recover.js';
import { journaledProvider } from '../provider/journaled.js';
import type { BackupJournalMeta } from './backup.js';
import { undoHandlers } from './undo-steps.js';

export interface RecoverOutcome {
  recovered: RecoveryResult[];
  /** Runs still in progress (their process or lock is alive): left alone. */
  skipped: string[];
}

/** Recover every dead run found in the state dir. Returns when each was tried. */
export async function recoverAllRuns(stateDir: string, log: Logger): Promise<RecoverOutcome> {
  const outcome: RecoverOutcome = { recovered: [], skipped: [] };
  for (const path of leftoverJournals(stateDir)) {
    if (isRunLive(stateDir, path)) {
      outcome.skipped.push(path);
      continue;
    }
    outcome.recovered.push(await recoverPath(stateDir, path, log));
  }
  return outcome;
}

/** Recover one dead run by id (a stale lock found by the next run). */
export async function recoverRun(stateDir: string, runId: string, log: Logger): Promise<RecoveryResult> {
  return recoverPath(stateDir, journalPath(stateDir, runId), log);
}

async function recoverPath(stateDir: string, path: string, log: Logger): Promise<RecoveryResult> {
  const start = readJournal(path)[0];
  if (start?.type === 'run-start' && (start.meta as { command?: string } | null)?.command === 'restore') {
    const { recoverRestore } = await import('../restore/recover.js');
    return recoverRestore(stateDir, path, log);
  }
  const meta = (start?.type === 'run-start' ? start.meta : {}) as unknown as BackupJournalMeta;
  const runLog = log.child({ runId: meta.runId, dataDir: meta.dataDir });
  const handlers = undoHandlers({
    log: runLog,
    runId: meta.runId,
    // Recovery must be able to start DSS even if DATA_DIR is half-broken: inspect lazily per handler.
    dataDir: await inspectDataDir(meta.dataDir),
    provider: journaledProvider(meta, stateDir, runLog),
    startTimeoutMs: meta.startTimeoutMs ?? 300_000,
  });
  const result = await recoverJournal(path, handlers, runLog);
  if (result.failed.length === 0) removeStaleLocksOf(stateDir, result.runId);
  return result;
}
