/**
 * `dssnap recover` for a restore killed half-way: the undo handlers of restore steps, rebuilt from the
 * journal alone, put the original DATA_DIR (and database) back and start DSS if the restore stopped it.
 */
import type { Logger } from '../log.js';
import { readJournal } from '../procedure/journal.js';
import { removeStaleLocksOf } from '../procedure/lock.js';
import { type RecoveryResult, recoverJournal } from '../procedure/recover.js';
import { journaledProvider } from '../provider/journaled.js';
import type { RestoreJournalMeta } from './restore.js';
import { restoreUndoHandlers } from './steps.js';

/** Recover the restore whose journal is `path`. Returns what was undone and what failed. */
export async function recoverRestore(stateDir: string, path: string, log: Logger): Promise<RecoveryResult> {
  const start = readJournal(path)[0];
  const meta = (start?.type === 'run-start' ? start.meta : {}) as unknown as RestoreJournalMeta;
  const runLog = log.child({ runId: meta.runId, dataDir: meta.dataDir, command: 'restore' });
  const handlers = restoreUndoHandlers({
    log: runLog,
    runId: meta.runId,
    provider: journaledProvider(meta, stateDir, runLog),
    startTimeoutMs: meta.startTimeoutMs ?? 300_000,
    stopTimeoutMs: meta.stopTimeoutMs ?? 180_000,
    env: process.env,
  });
  const result = await recoverJournal(path, handlers, runLog);
  if (result.failed.length === 0) removeStaleLocksOf(stateDir, result.runId);
  return result;
}
