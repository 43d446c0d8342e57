/**
 * The only place that runs commands. Tools are resolved to absolute paths over a PATH that always
 * includes the sbin directories: cron's PATH lacks them, and a missing `fsfreeze` must be an error,
 * never a silently skipped step (ec2-consistent-snapshot #49).
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { execa } from 'execa';
import { DssnapError } from '../errors.js';

const systemDirs = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export interface RunOptions {
  /** Milliseconds; the process is killed (SIGTERM, then SIGKILL) when it runs longer. */
  timeoutMs?: number;
  cwd?: string;
  env?: Record<string, string | undefined>;
  input?: string;
  signal?: AbortSignal;
  /** Exit codes that are not failures (rsync 23/24 are warnings, `dss status` 1 means stopped). */
  okExitCodes?: readonly number[];
  /** Called with each line of stdout as it arrives (progress, streamed installer output). */
  onStdoutLine?: (line: string) => void;
  onStderrLine?: (line: string) => void;
  /**
   * Do not keep stdout in memory (still streamed to onStdoutLine): rsync's progress output grows with
   * the number of files and would hit the buffer limit on a million-file DATA_DIR.
   */
  discardStdout?: boolean;
  /**
   * Called once with the raw stdout stream, for binary output read as it comes (a decompressed archive);
   * stdout is then not kept in memory. The caller must consume the stream.
   */
  onStdout?: (stream: NodeJS.ReadableStream) => void;
}

export interface RunResult {
  command: string;
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** A command that failed: exit code, output tails and whether it timed out, apart from a short message. */
export class CommandError extends DssnapError {
  readonly command: string;
  readonly exitCode_: number | undefined;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  readonly isCanceled: boolean;

  constructor(
    fields: {
      command: string;
      exitCode: number | undefined;
      stdout: string;
      stderr: string;
      timedOut: boolean;
      isCanceled: boolean;
    },
    cause?: unknown,
  ) {
    const what = fields.timedOut
      ? 'timed out'
      : fields.isCanceled
        ? 'was cancelled'
        : `exited with code ${fields.exitCode ?? 'unknown'}`;
    const tail = lastLines(fields.stderr || fields.stdout, 5);
    super(
      fields.timedOut ? 'TIMEOUT' : 'COMMAND_FAILED',
      `${fields.command} ${what}${tail ? `: ${tail}` : ''}`,
      {
        cause,
        details: { command: fields.command, exitCode: fields.exitCode, timedOut: fields.timedOut },
      },
    );
    this.name = 'CommandError';
    this.command = fields.command;
    this.exitCode_ = fields.exitCode;
    this.stdout = fields.stdout;
    this.stderr = fields.stderr;
    this.timedOut = fields.timedOut;
    this.isCanceled = fields.isCanceled;
  }
}

export function lastLines(text: string, count: number): string {
  return text.trim().split('\n').slice(-count).join('\n').trim();
}

/** Absolute path of a tool, or undefined when it is not installed. */
export function findTool(name: string): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...systemDirs];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Absolute path of a tool, or a TOOL_MISSING error naming the package to install. */
export function requireTool(name: string, packageHint?: string): string {
  const found = findTool(name);
  if (found) return found;
  throw new DssnapError('TOOL_MISSING', `The command '${name}' is not installed or not on PATH`, {
    hint: `Install it${packageHint ? ` (Debian/Ubuntu package: ${packageHint})` : ''} and run again; 'dssnap doctor' lists every tool a mode needs.`,
    details: { tool: name },
  });
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Run a command without a shell. Throws CommandError unless the exit code is 0 or in okExitCodes. */
export async function run(
  file: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const resolved = file.includes('/') ? file : requireTool(file);
  const command = [file, ...args].join(' ');
  const started = performance.now();
  const subprocess = execa(resolved, args, {
    cwd: options.cwd,
    env: options.env,
    extendEnv: true,
    input: options.input,
    cancelSignal: options.signal,
    timeout: options.timeoutMs,
    forceKillAfterDelay: 5_000,
    reject: false,
    stripFinalNewline: false,
    stdin: options.input === undefined ? 'ignore' : 'pipe',
    buffer: { stdout: !options.discardStdout && !options.onStdout, stderr: true },
  });
  if (options.onStdout && subprocess.stdout) options.onStdout(subprocess.stdout);
  if (options.onStdoutLine) forwardLines(subprocess.stdout, options.onStdoutLine);
  if (options.onStderrLine) forwardLines(subprocess.stderr, options.onStderrLine);
  const result = await subprocess;
  const stdout = String(result.stdout ?? '');
  const stderr = String(result.stderr ?? '');
  const exitCode = result.exitCode;
  const ok =
    !result.timedOut &&
    !result.isCanceled &&
    exitCode !== undefined &&
    (exitCode === 0 || (options.okExitCodes ?? []).includes(exitCode));
  if (!ok) {
    throw new CommandError(
      { command, exitCode, stdout, stderr, timedOut: result.timedOut, isCanceled: result.isCanceled },
      result.cause,
    );
  }
  return { command, exitCode: exitCode ?? 0, stdout, stderr, durationMs: performance.now() - started };
}

function forwardLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (!stream) return;
  let pending = '';
  stream.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    // rsync --info=progress2 ends progress updates with \r, not \n.
    const parts = pending.split(/[\r\n]/);
    pending = parts.pop() ?? '';
    for (const part of parts) if (part) onLine(part);
  });
  stream.on('end', () => {
    if (pending) onLine(pending);
  });
}
