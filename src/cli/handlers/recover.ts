/** `dssnap recover`: undo what dead runs left, from their journals. */
import { recoverAllRuns } from '../../backup/recover.js';
import { ExitCode } from '../../errors.js';
import type { RecoverArgs } from '../commands/recover.js';
import { loggerFor } from '../context.js';
import { printJson, reportFailure } from '../output.js';

export async function handleRecover(argv: RecoverArgs): Promise<number> {
  const log = loggerFor(argv);
  try {
    const outcome = await recoverAllRuns(argv.stateDir, log);
    const failed = outcome.recovered.filter((r) => r.failed.length > 0);
    if (argv.json) printJson({ ok: failed.length === 0, ...outcome });
    else {
      if (outcome.recovered.length === 0 && outcome.skipped.length === 0)
        process.stdout.write('Nothing to recover.\n');
      for (const r of outcome.recovered) {
        process.stdout.write(
          `Run ${r.runId}: ${r.undone.length > 0 ? `undid ${r.undone.join(', ')}` : 'nothing left to undo'}${r.failed.length > 0 ? `; FAILED: ${r.failed.map((f) => `${f.kind} (${f.error})`).join('; ')}` : ''}\n`,
        );
      }
      for (const s of outcome.skipped) process.stdout.write(`Still running, left alone: ${s}\n`);
    }
    return failed.length === 0 ? ExitCode.ok : ExitCode.failed;
  } catch (error) {
    return reportFailure(error, argv, log);
  }
}
