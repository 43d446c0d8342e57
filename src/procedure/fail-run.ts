/** The one way a journaled run (backup, restore) ends in failure. */
import { DssnapError } from '../errors.js';
import type { Logger } from '../log.js';
import { archiveJournal, type Journal } from './journal.js';
import type { Runner } from './runner.js';

/**
 * Undo what the run did, close its journal — archived when everything was undone, left in place for
 * `dssnap recover` when an undo failed — and return the error to throw: INTERRUPTED after SIGINT/SIGTERM.
 */
export async function failRun(
  runner: Runner,
  journal: Journal,
  error: unknown,
  context: { what: 'backup' | 'restore'; log: Logger; signal?: AbortSignal },
): Promise<unknown> {
  const failure = context.signal?.aborted
    ? new DssnapError('INTERRUPTED', `The ${context.what} was interrupted; everything it did was undone`, {
        cause: error,
      })
    : error;
  const summary = await runner.finish(failure);
  journal.close();
  if (summary.undoFailures.length === 0) archiveJournal(journal.path);
  else context.log.error({ journal: journal.path }, 'Some undo steps failed; run dssnap recover');
  return failure;
}
