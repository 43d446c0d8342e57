/**
 * A process that keeps writing into DATA_DIR, the way DSS does, and reports how long it was held: a
 * plain Node script (written to a temp file) that writes a small file and fsyncs it every ~2 ms and
 * records every gap between completed writes above a threshold, with wall-clock times, so the bench
 * can tell which step of a backup caused the longest one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A gap between two completed writes: [start, end] in epoch milliseconds (the clock of pino's `time`). */
export type Gap = readonly [start: number, end: number];

export interface WriterReport {
  writes: number;
  maxGapMs: number;
  /** Every gap of at least `gapThresholdMs`, in order. */
  gaps: Gap[];
  /** False when the writer did not stop on SIGTERM within the grace time (blocked: a frozen filesystem?). */
  stoppedCleanly: boolean;
}

export interface RunningWriter {
  /** Stop the writer (SIGTERM, SIGKILL after 15 s) and return what it saw. Call once. */
  stop(): Promise<WriterReport>;
}

export const gapThresholdMs = 5;

const script = `
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
const [dir, period, threshold] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
mkdirSync(dir, { recursive: true });
let writes = 0, maxGapMs = 0, last = 0, stopping = false;
const gaps = [];
process.on('SIGTERM', () => { stopping = true; });
function tick() {
  if (stopping) {
    process.stdout.write(JSON.stringify({ writes, maxGapMs, gaps }) + '\\n');
    return;
  }
  const fd = openSync(dir + '/w-' + (writes % 8), 'w');
  writeSync(fd, Date.now() + '\\n');
  fsyncSync(fd);
  closeSync(fd);
  const now = performance.now();
  if (writes === 0) process.stdout.write('ready\\n');
  else {
    const gap = now - last;
    if (gap > maxGapMs) maxGapMs = gap;
    if (gap >= threshold && gaps.length < 100000) {
      const end = Date.now();
      gaps.push([end - gap, end]);
    }
  }
  last = now;
  writes++;
  setTimeout(tick, period);
}
tick();
`;

/** Start a writer into `dir` (created) from a script written under `workDir`. Resolves after its first write. */
export async function startWriter(workDir: string, dir: string, periodMs = 2): Promise<RunningWriter> {
  const scriptPath = join(workDir, 'bench-writer.mjs');
  await writeFile(scriptPath, script);
  const child = spawn(process.execPath, [scriptPath, dir, String(periodMs), String(gapThresholdMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    output += chunk;
  });
  await waitForReady(child, () => output);
  return {
    async stop() {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await once(child, 'close');
      clearTimeout(killer);
      const report = output.split('\n').find((line) => line.startsWith('{'));
      if (!report) return { writes: 0, maxGapMs: Number.POSITIVE_INFINITY, gaps: [], stoppedCleanly: false };
      return { ...(JSON.parse(report) as Omit<WriterReport, 'stoppedCleanly'>), stoppedCleanly: true };
    },
  };
}

async function waitForReady(child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!output().includes('ready\n')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('The bench writer did not start (no first write within 10 s)');
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The longest gap that overlaps [from, to] (epoch ms); undefined when none reached the threshold. */
export function longestGapIn(report: WriterReport, from: number, to: number): Gap | undefined {
  let longest: Gap | undefined;
  for (const gap of report.gaps) {
    if (gap[0] <= to && gap[1] >= from && (!longest || gapMs(gap) > gapMs(longest))) longest = gap;
  }
  return longest;
}

/** Length of a gap in ms; 0 for none (every gap was under the threshold). */
export function gapMs(gap: Gap | undefined): number {
  return gap ? gap[1] - gap[0] : 0;
}
