/**
 * Run a child process and measure it from outside: wall time and the peak resident set size of that
 * very process (VmHWM in /proc, polled), so a dssnap run is not credited with rsync's memory.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface MeasuredRun {
  exitCode: number;
  wallMs: number;
  /** Peak RSS of the started process itself (not its children), as last read before it exited. */
  peakRssBytes: number;
  stdout: string;
  stderr: string;
}

export interface MeasureOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const pollMs = 20;

/** Run `file args` to completion. Resolves with whatever exit code it had; rejects only if it cannot start. */
export function runMeasured(
  file: string,
  args: readonly string[],
  options: MeasureOptions = {},
): Promise<MeasuredRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    let peakRssBytes = 0;
    const poll = setInterval(() => {
      peakRssBytes = Math.max(peakRssBytes, child.pid ? readPeakRss(child.pid) : 0);
    }, pollMs);
    child.on('error', (error) => {
      clearInterval(poll);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearInterval(poll);
      resolve({
        exitCode: code ?? (signal ? 128 : -1),
        wallMs: performance.now() - started,
        peakRssBytes,
        stdout: Buffer.concat(stdout).toString(),
        stderr: Buffer.concat(stderr).toString(),
      });
    });
  });
}

/** VmHWM of a live process in bytes; 0 once it has exited (a zombie has no memory lines). */
function readPeakRss(pid: number): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
