/** Run the built `dssnap` CLI as a user would, in a child process. `npm test` builds it first. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';

export const cliPath = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli', 'main.js');

function assertBuilt(): void {
  if (!existsSync(cliPath)) {
    throw new Error(
      `The CLI is not built (${cliPath} is missing): run 'npm run build' first ('npm test' does).`,
    );
  }
}

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function dssnap(
  args: readonly string[],
  options: { env?: Record<string, string> } = {},
): Promise<CliResult> {
  assertBuilt();
  const result = await execa(process.execPath, [cliPath, ...args], {
    reject: false,
    env: { DSSNAP_LOG_LEVEL: 'warn', ...options.env },
    stdin: 'ignore',
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** Start the CLI without waiting, to signal or kill it mid-run. */
export function spawnDssnap(
  args: readonly string[],
  options: { env?: Record<string, string> } = {},
): ResultPromise {
  assertBuilt();
  return execa(process.execPath, [cliPath, ...args], {
    reject: false,
    env: { DSSNAP_LOG_LEVEL: 'warn', ...options.env },
    stdin: 'ignore',
  });
}
