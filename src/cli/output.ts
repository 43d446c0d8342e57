/**
 * How a command ends: the result object on stdout with `--json` (for CI pipelines), a short human
 * summary otherwise; errors as message + hint on stderr; the documented exit code.
 */
import { type DssnapError, ExitCode, type ExitCodeValue, exitCodeFor, isDssnapError } from '../errors.js';
import type { Logger } from '../log.js';

export interface GlobalArgs {
  config?: string;
  json?: boolean;
  logFormat?: 'pretty' | 'json';
  logLevel?: string;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Report a failure the way users and scripts expect, and return its exit code. */
export function reportFailure(error: unknown, args: GlobalArgs, log?: Logger): ExitCodeValue {
  const code = exitCodeFor(error);
  const typed: DssnapError | undefined = isDssnapError(error) ? error : undefined;
  if (log) {
    if (typed) log.error({ code: typed.code, details: typed.details }, typed.message);
    else log.error({ err: error }, 'Unexpected failure');
  }
  if (args.json) {
    printJson({
      ok: false,
      exitCode: code,
      error: {
        code: typed?.code ?? 'INTERNAL',
        message: error instanceof Error ? error.message : String(error),
        hint: typed?.hint,
      },
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`dssnap: ${message}\n`);
  if (typed?.hint) process.stderr.write(`  hint: ${typed.hint}\n`);
  if (!typed) process.stderr.write(`${(error as Error)?.stack ?? ''}\n`);
  return code === ExitCode.ok ? ExitCode.failed : code;
}
