/**
 * Start, stop and query DSS through `DATA_DIR/bin/dss`. bin/dss refuses to run as root, while dssnap
 * runs as root (mounts, snapshots): as root, it is run as the owner of DATA_DIR through `runuser`.
 */
import { DssnapError } from '../errors.js';
import { CommandError, lastLines, type RunResult, run } from '../host/exec.js';
import type { Logger } from '../log.js';
import type { DataDirInfo } from './layout.js';

export type DssState = 'running' | 'stopped';
export type DssAction = 'start' | 'stop' | 'status' | 'restart';

export interface DssProcessStatus {
  name: string;
  /** Supervisor state: RUNNING, STOPPED, STARTING, FATAL, EXITED… */
  state: string;
  pid?: number;
}

export interface DssControlOptions {
  /** Milliseconds before bin/dss is killed and DSS_CONTROL_FAILED thrown. */
  timeoutMs?: number;
  signal?: AbortSignal;
  log?: Logger;
}

export interface DssControlResult {
  /** False when DSS already was in the wanted state and bin/dss was not called. */
  changed: boolean;
  durationMs: number;
  /** What bin/dss printed (empty when not called). */
  output: string;
}

/** How long a `bin/dss status` may take; it only asks supervisord. */
const statusTimeoutMs = 30_000;

/** The exit codes of `bin/dss status` (supervisorctl) that mean "not (fully) running", not a failure. */
const notRunningExitCodes = [1, 2, 3, 4];

/**
 * The command line that runs `bin/dss <action>` for this DATA_DIR: through `runuser -u OWNER --` when
 * this process is root and DATA_DIR is not owned by root, directly otherwise. Pure.
 * Throws DSS_CONTROL_FAILED when the owner's uid has no user name (runuser needs one).
 */
export function dssCommand(
  info: Pick<DataDirInfo, 'path' | 'owner'>,
  action: DssAction,
  currentUid: number = process.getuid?.() ?? -1,
): { file: string; args: string[] } {
  const script = `${info.path}/bin/dss`;
  if (currentUid !== 0 || info.owner.uid === 0) return { file: script, args: [action] };
  if (!info.owner.user) {
    throw new DssnapError(
      'DSS_CONTROL_FAILED',
      `Cannot run bin/dss as the owner of ${info.path}: uid ${info.owner.uid} has no entry in /etc/passwd`,
      {
        hint: 'bin/dss refuses to run as root, so dssnap runs it as the DATA_DIR owner; create that user (or fix the ownership of DATA_DIR) and run again.',
        details: { dataDir: info.path, uid: info.owner.uid },
      },
    );
  }
  return { file: 'runuser', args: ['-u', info.owner.user, '--', script, action] };
}

/**
 * Whether DSS runs: `running` when `bin/dss status` exits 0 or reports any process RUNNING (a
 * half-started DSS must still be stopped before a cold copy), `stopped` otherwise. Changes nothing.
 * Throws DSS_CONTROL_FAILED when bin/dss itself cannot run (refused as root, not executable, timeout).
 */
export async function dssStatus(
  info: Pick<DataDirInfo, 'path' | 'owner'>,
  options: Omit<DssControlOptions, 'timeoutMs'> = {},
): Promise<DssState> {
  const result = await runDss(
    info,
    'status',
    { ...options, timeoutMs: statusTimeoutMs },
    notRunningExitCodes,
  );
  const output = `${result.stdout}\n${result.stderr}`;
  if (result.exitCode === 0) return 'running';
  // Not "no such file": supervisorctl says that of its socket when DSS is simply stopped. A missing or
  // non-executable bin/dss exits 126/127, which run() already reports as a failure.
  if (/must not be run as root|permission denied/i.test(output)) {
    throw new DssnapError('DSS_CONTROL_FAILED', `bin/dss status failed: ${lastLines(output, 5)}`, {
      hint: 'Check that bin/dss is executable by the owner of DATA_DIR and that dssnap can run it as that user.',
      details: { dataDir: info.path, exitCode: result.exitCode },
    });
  }
  return parseDssStatus(output).some((process_) => process_.state === 'RUNNING') ? 'running' : 'stopped';
}

/**
 * Stop DSS with `bin/dss stop` and check that it reports stopped. Idempotent: an already stopped DSS
 * gives `changed: false` without calling stop. Returns when DSS is stopped. Throws DSS_CONTROL_FAILED
 * with the tail of bin/dss's output when stop fails, runs longer than `timeoutMs` (default 180 s),
 * or returns while DSS still runs.
 */
export async function stopDss(
  info: Pick<DataDirInfo, 'path' | 'owner'>,
  options: DssControlOptions = {},
): Promise<DssControlResult> {
  return changeState(info, 'stop', 'stopped', { timeoutMs: 180_000, ...options });
}

/**
 * Start DSS with `bin/dss start` (which waits for the backend) and check that it reports running.
 * Idempotent: an already running DSS gives `changed: false`. Throws DSS_CONTROL_FAILED with the tail of
 * the output when start fails or runs longer than `timeoutMs` (default 300 s).
 */
export async function startDss(
  info: Pick<DataDirInfo, 'path' | 'owner'>,
  options: DssControlOptions = {},
): Promise<DssControlResult> {
  return changeState(info, 'start', 'running', { timeoutMs: 300_000, ...options });
}

/**
 * Parse supervisor-style status lines (`backend   RUNNING   pid 123, uptime 0:00:05`). Lines of
 * another shape are ignored. Pure.
 */
export function parseDssStatus(output: string): DssProcessStatus[] {
  const processes: DssProcessStatus[] = [];
  for (const line of output.split('\n')) {
    const match =
      /^\s*([\w.:-]+)\s+(RUNNING|STOPPED|STARTING|STOPPING|BACKOFF|EXITED|FATAL|UNKNOWN)\b(.*)$/.exec(line);
    if (!match) continue;
    const pid = /\bpid (\d+)/.exec(match[3]!);
    processes.push({ name: match[1]!, state: match[2]!, ...(pid ? { pid: Number(pid[1]) } : {}) });
  }
  return processes;
}

async function changeState(
  info: Pick<DataDirInfo, 'path' | 'owner'>,
  action: 'start' | 'stop',
  wanted: DssState,
  options: DssControlOptions & { timeoutMs: number },
): Promise<DssControlResult> {
  const started = performance.now();
  const { log } = options;
  if ((await dssStatus(info, options)) === wanted) {
    log?.info({ dataDir: info.path, action }, 'DSS already in the wanted state');
    return { changed: false, durationMs: performance.now() - started, output: '' };
  }
  log?.info({ dataDir: info.path, action, timeoutMs: options.timeoutMs }, 'Running bin/dss');
  let result: RunResult;
  try {
    result = await runDss(info, action, options);
  } catch (error) {
    throw controlFailed(info, action, options.timeoutMs, error);
  }
  const output = `${result.stdout}${result.stderr}`;
  if ((await dssStatus(info, options)) !== wanted) {
    throw new DssnapError(
      'DSS_CONTROL_FAILED',
      `bin/dss ${action} returned, but DSS is not ${wanted}: ${lastLines(output, 10) || '(no output)'}`,
      {
        hint: `Run '${info.path}/bin/dss status' and read ${info.path}/run/ for the cause.`,
        details: { dataDir: info.path },
      },
    );
  }
  const durationMs = performance.now() - started;
  log?.info({ dataDir: info.path, action, durationMs: Math.round(durationMs) }, 'bin/dss finished');
  return { changed: true, durationMs, output };
}

async function runDss(
  info: Pick<DataDirInfo, 'path' | 'owner'>,
  action: DssAction,
  options: DssControlOptions,
  okExitCodes: readonly number[] = [],
): Promise<RunResult> {
  const { file, args } = dssCommand(info, action);
  try {
    // cwd = DATA_DIR: the owner can always enter it, while the caller's cwd may be root-only.
    return await run(file, args, {
      cwd: info.path,
      timeoutMs: options.timeoutMs,
      signal: options.signal,
      okExitCodes,
    });
  } catch (error) {
    if (action === 'status') throw controlFailed(info, action, options.timeoutMs ?? statusTimeoutMs, error);
    throw error;
  }
}

function controlFailed(
  info: Pick<DataDirInfo, 'path'>,
  action: DssAction,
  timeoutMs: number | undefined,
  error: unknown,
): DssnapError {
  if (error instanceof DssnapError && !(error instanceof CommandError)) return error;
  const tail =
    error instanceof CommandError ? lastLines(`${error.stdout}\n${error.stderr}`, 10) : String(error);
  const timedOut = error instanceof CommandError && error.timedOut;
  const what = timedOut
    ? `did not finish within ${Number(((timeoutMs ?? 0) / 1000).toFixed(1))} s and was killed`
    : error instanceof CommandError && error.isCanceled
      ? 'was cancelled'
      : `failed (exit code ${error instanceof CommandError ? (error.exitCode_ ?? 'unknown') : 'unknown'})`;
  const copyHint = /appears to be a copy|expected-dip-home/i.test(tail)
    ? `This DATA_DIR was moved or restored to a new path: run 'INSTALL_DIR/installer.sh -d ${info.path} -u' first.`
    : undefined;
  return new DssnapError('DSS_CONTROL_FAILED', `bin/dss ${action} ${what}${tail ? `: ${tail}` : ''}`, {
    cause: error,
    hint:
      copyHint ??
      (action === 'stop'
        ? `DSS may still be running: check with '${info.path}/bin/dss status' and stop it by hand if needed.`
        : `Check '${info.path}/bin/dss status' and the logs in ${info.path}/run/.`),
    details: { dataDir: info.path, action, timedOut },
  });
}
