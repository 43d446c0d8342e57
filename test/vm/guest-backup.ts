/**
 * Guest side: `dssnap backup` and `dssnap recover` run inside the agent's warm Node process (the same
 * code the CLI runs after parsing its flags), so that a test file pays Node's slow module loading in the
 * TCG guest once, not once per run. Results and errors come back as the CLI's `--json` would print them.
 */
import { runBackup } from '../../src/backup/backup.js';
import { recoverAllRuns } from '../../src/backup/recover.js';
import { backupOptionsSchema, resolveOptions } from '../../src/config.js';
import { exitCodeFor, isDssnapError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';

export interface GuestBackupResult {
  ok: boolean;
  exitCode: number;
  manifest?: Awaited<ReturnType<typeof runBackup>>['manifest'];
  error?: { code: string; message: string; hint?: string };
}

export interface GuestRunOptions {
  /** Directories put first on PATH for this run (fault-injection shims). */
  pathPrefix?: string;
  /** Where the run's log goes (JSON lines); default: nowhere. */
  logFile?: string;
  /** How often the snapshots are checked during the copy (BackupDeps.exposureCheckMs). */
  exposureCheckMs?: number;
}

/** `dssnap backup` with these flags (camelCase, as `backupOptionsSchema` names them). Never throws. */
export async function backup(
  flags: Record<string, unknown>,
  options: GuestRunOptions = {},
): Promise<GuestBackupResult> {
  return withPath(options.pathPrefix, async () => {
    try {
      const parsed = resolveOptions(backupOptionsSchema, { flags });
      const result = await runBackup(parsed, {
        log: logger(options.logFile),
        ...(options.exposureCheckMs ? { exposureCheckMs: options.exposureCheckMs } : {}),
      });
      return { ok: true, exitCode: result.exitCode, manifest: result.manifest };
    } catch (error) {
      return {
        ok: false,
        exitCode: exitCodeFor(error),
        error: {
          code: isDssnapError(error) ? error.code : 'INTERNAL',
          message: error instanceof Error ? error.message : String(error),
          ...(isDssnapError(error) && error.hint ? { hint: error.hint } : {}),
        },
      };
    }
  });
}

/** `dssnap recover`: undo what dead runs left; returns the runs recovered and those still failing. */
export async function recover(
  stateDir: string,
  options: GuestRunOptions = {},
): Promise<{ recovered: string[]; failed: number }> {
  const outcome = await recoverAllRuns(stateDir, logger(options.logFile));
  return {
    recovered: outcome.recovered.map((result) => result.runId),
    failed: outcome.recovered.reduce((sum, result) => sum + result.failed.length, 0),
  };
}

function logger(file: string | undefined) {
  return createLogger({
    level: file ? 'debug' : 'silent',
    format: 'json',
    ...(file ? { destination: file } : {}),
  });
}

async function withPath<T>(prefix: string | undefined, action: () => Promise<T>): Promise<T> {
  if (!prefix) return action();
  const saved = process.env.PATH;
  process.env.PATH = `${prefix}:${saved ?? ''}`;
  try {
    return await action();
  } finally {
    process.env.PATH = saved;
  }
}
