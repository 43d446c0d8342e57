/**
 * Typed errors with stable codes. The `message` is what a user reads (what was wrong, what to do);
 * the `cause` keeps the low-level error for the log. Every code maps to one documented exit code.
 */

/** Documented exit codes (README "Exit codes"). Scripts depend on these: never renumber. */
export const ExitCode = {
  ok: 0,
  failed: 1,
  completedWithWarnings: 2,
  usage: 3,
  locked: 4,
  refused: 5,
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export type ErrorCode =
  | 'USAGE'
  | 'CONFIG_INVALID'
  | 'UNKNOWN_PROVIDER'
  | 'NOT_A_DATA_DIR'
  | 'DESTINATION_INVALID'
  | 'LOCKED'
  | 'JOBS_RUNNING'
  | 'NO_SPACE'
  | 'TOOL_MISSING'
  | 'UNSUPPORTED'
  | 'NOT_ROOT'
  | 'DSS_CONTROL_FAILED'
  | 'COMMAND_FAILED'
  | 'PROVIDER_ERROR'
  | 'TIMEOUT'
  | 'INTERRUPTED'
  | 'COPY_FAILED'
  | 'NOT_FOUND'
  | 'VERSION_MISMATCH'
  | 'BACKUP_INVALID'
  | 'DATABASE_UNREACHABLE'
  | 'DATABASE_NOT_EMPTY'
  | 'DATABASE_ERROR'
  | 'INTERNAL';

const exitCodeOf: Record<ErrorCode, ExitCodeValue> = {
  USAGE: ExitCode.usage,
  CONFIG_INVALID: ExitCode.usage,
  UNKNOWN_PROVIDER: ExitCode.usage,
  NOT_A_DATA_DIR: ExitCode.usage,
  DESTINATION_INVALID: ExitCode.usage,
  LOCKED: ExitCode.locked,
  JOBS_RUNNING: ExitCode.refused,
  NO_SPACE: ExitCode.refused,
  TOOL_MISSING: ExitCode.refused,
  UNSUPPORTED: ExitCode.refused,
  NOT_ROOT: ExitCode.refused,
  DSS_CONTROL_FAILED: ExitCode.failed,
  COMMAND_FAILED: ExitCode.failed,
  PROVIDER_ERROR: ExitCode.failed,
  TIMEOUT: ExitCode.failed,
  INTERRUPTED: ExitCode.interrupted,
  COPY_FAILED: ExitCode.failed,
  NOT_FOUND: ExitCode.usage,
  VERSION_MISMATCH: ExitCode.refused,
  BACKUP_INVALID: ExitCode.failed,
  DATABASE_UNREACHABLE: ExitCode.refused,
  DATABASE_NOT_EMPTY: ExitCode.refused,
  DATABASE_ERROR: ExitCode.failed,
  INTERNAL: ExitCode.failed,
};

export interface DssnapErrorOptions {
  cause?: unknown;
  /** What the user can do about it, printed under the message. */
  hint?: string;
  /** Structured facts for the log and `--json` output. Never put secrets here. */
  details?: Record<string, unknown>;
}

export class DssnapError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: DssnapErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DssnapError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details ?? {};
  }

  get exitCode(): ExitCodeValue {
    return exitCodeOf[this.code];
  }
}

export function isDssnapError(error: unknown): error is DssnapError {
  return error instanceof DssnapError;
}

/** Exit code for any thrown value: our typed errors know theirs; anything else is an internal failure. */
export function exitCodeFor(error: unknown): ExitCodeValue {
  return isDssnapError(error) ? error.exitCode : ExitCode.failed;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
