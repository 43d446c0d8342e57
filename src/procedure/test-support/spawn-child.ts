/** Test support: start the transpiled child script and follow its stdout line by line. */
import { type ChildProcess, spawn } from 'node:child_process';

export interface RunningChild {
  process: ChildProcess;
  pid: number;
  /** Resolves with the first stdout line matching `pattern`; rejects if the child exits first or after `timeoutMs`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves when the child has exited (and been reaped). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

export function startChild(script: string, args: readonly string[]): RunningChild {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let pending = '';
  let stderr = '';
  let done = false;
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const parts = pending.split('\n');
    pending = parts.pop() ?? '';
    lines.push(...parts);
    for (const wake of waiters) wake();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>(
    (resolve) => {
      child.on('close', (code, signal) => {
        done = true;
        for (const wake of waiters) wake();
        resolve({ code, signal, stderr });
      });
    },
  );
  return {
    process: child,
    pid: child.pid!,
    exited,
    waitForLine(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `No line matching ${pattern} from the child within ${timeoutMs} ms; got ${JSON.stringify(lines)}; stderr: ${stderr}`,
            ),
          );
        }, timeoutMs);
        function check(): void {
          const line = lines.find((candidate) => pattern.test(candidate));
          if (line !== undefined || done) {
            clearTimeout(timer);
            waiters.delete(check);
            if (line !== undefined) resolve(line);
            else
              reject(
                new Error(
                  `The child exited before printing ${pattern}; got ${JSON.stringify(lines)}; stderr: ${stderr}`,
                ),
              );
          }
        }
        waiters.add(check);
        check();
      });
    },
  };
}
