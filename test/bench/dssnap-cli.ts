/**
 * The built dssnap CLI as a user runs it (`node dist/src/cli/main.js backup …`), one child process per
 * run, with its JSON result and JSON log lines parsed for the bench.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Manifest } from '../../src/catalog/manifest.js';
import { type MeasuredRun, runMeasured } from './measured-process.js';

/** dist/test/bench/ → dist/src/cli/main.js: the bench only runs compiled (`npm run bench`). */
export const cliPath = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js');

export interface LogLine {
  time: number;
  msg: string;
  kind?: string;
  durationMs?: number;
}

export interface DssnapRun extends MeasuredRun {
  manifest: Manifest;
  logs: LogLine[];
}

/** Where a backup of a test DATA_DIR reads and writes: the same fields as test/support/dss-host.ts. */
export interface BackupTarget {
  dataDir: string;
  destination: string;
  stateDir: string;
  mountRoot: string;
  snapshotDir?: string;
}

/** The flags that point a backup at `target`, followed by `extra`. */
export function backupArgs(target: BackupTarget, extra: readonly string[] = []): string[] {
  return [
    '--data-dir',
    target.dataDir,
    '--to',
    target.destination,
    '--state-dir',
    target.stateDir,
    '--mount-root',
    target.mountRoot,
    ...(target.snapshotDir ? ['--snapshot-dir', target.snapshotDir] : []),
    ...extra,
  ];
}

/** Throws unless `npm run build` produced the CLI. */
export function assertCliBuilt(): void {
  if (!existsSync(cliPath)) {
    throw new Error(
      `The dssnap CLI is not built (${cliPath} is missing): run 'npm run bench', which builds first.`,
    );
  }
}

/** `dssnap backup ARGS --json`. Returns the manifest of a completed run; throws with dssnap's stderr otherwise. */
export async function runDssnapBackup(args: readonly string[]): Promise<DssnapRun> {
  assertCliBuilt();
  const result = await runMeasured(process.execPath, [
    cliPath,
    'backup',
    ...args,
    '--json',
    '--log-format',
    'json',
    '--log-level',
    'info',
  ]);
  if (result.exitCode !== 0 && result.exitCode !== 2) {
    throw new Error(
      `dssnap backup ${args.join(' ')} exited ${result.exitCode}:\n${result.stdout}\n${result.stderr}`,
    );
  }
  const parsed = JSON.parse(result.stdout) as { manifest: Manifest };
  return { ...result, manifest: parsed.manifest, logs: parseLogLines(result.stderr) };
}

function parseLogLines(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // Not a log line (a Node warning, say): ignored.
    }
  }
  return lines;
}

/** Duration of the first step of `kind` in the manifest, in ms (0 when the run had no such step). */
export function stepMs(manifest: Manifest, kind: string): number {
  return manifest.steps.find((step) => step.kind === kind)?.durationMs ?? 0;
}
