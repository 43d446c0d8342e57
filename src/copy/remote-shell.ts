/**
 * The few file operations a remote destination needs, each one ssh round trip (`ssh host -- <command>`,
 * ~0.1–0.5 s each) with every path quoted for the remote shell: ssh joins its arguments into one command
 * line that the remote shell parses again. Scripts take paths as positional parameters, never inline.
 */
import { type RunOptions, type RunResult, requireTool, run } from '../host/exec.js';
import { shellQuote, splitCommandLine } from './destination.js';

/** BatchMode: a cron job must fail at once rather than wait for a password nobody types. */
export const defaultSshCommand = 'ssh -o BatchMode=yes';

/** The ssh command line as words, its program resolved (TOOL_MISSING when ssh is not installed). */
export function sshWords(sshCommand: string = defaultSshCommand): [string, ...string[]] {
  const [program, ...options] = splitCommandLine(sshCommand);
  if (!program) return [requireTool('ssh', 'openssh-client'), '-o', 'BatchMode=yes'];
  return [program.includes('/') ? program : requireTool(program, 'openssh-client'), ...options];
}

export type RemoteOptions = RunOptions & { sshCommand?: string };

/** Run `words` on `host` through the remote shell. Throws CommandError like `run` (255: ssh failed). */
export async function runRemote(
  host: string,
  words: readonly string[],
  options: RemoteOptions = {},
): Promise<RunResult> {
  const { sshCommand, ...runOptions } = options;
  const [program, ...sshOptions] = sshWords(sshCommand);
  return run(program, [...sshOptions, host, '--', words.map(shellQuote).join(' ')], {
    timeoutMs: 120_000,
    ...runOptions,
  });
}

/** Run a POSIX sh `script` on `host` with `args` as `$1`, `$2`…; returns its stdout. */
export async function runRemoteScript(
  host: string,
  script: string,
  args: readonly string[],
  options: RemoteOptions = {},
): Promise<string> {
  return (await runRemote(host, ['sh', '-c', script, 'sh', ...args], options)).stdout;
}

/**
 * Create `dir` on `host` and say whether `dir/name` exists and whether `dir/previous` is a directory:
 * the preflight of a remote generation in one round trip.
 */
export async function remotePrepareDirectory(
  host: string,
  dir: string,
  name: string,
  previous: string | undefined,
  options: RemoteOptions = {},
): Promise<{ exists: boolean; previousExists: boolean }> {
  const script = [
    'mkdir -p -- "$1" || exit 1',
    'if [ -e "$1/$2" ] || [ -L "$1/$2" ]; then echo exists; fi',
    'if [ -n "$3" ] && [ -d "$1/$3" ]; then echo previous; fi',
  ].join('\n');
  const lines = (await runRemoteScript(host, script, [dir, name, previous ?? ''], options)).split('\n');
  return { exists: lines.includes('exists'), previousExists: lines.includes('previous') };
}

/** Remove `path` on `host` recursively. Idempotent: returns false when nothing was there. */
export async function remoteRemove(
  host: string,
  path: string,
  options: RemoteOptions = {},
): Promise<boolean> {
  const script = 'if [ -e "$1" ] || [ -L "$1" ]; then rm -rf -- "$1" && echo removed; fi';
  const stdout = await runRemoteScript(host, script, [path], { timeoutMs: 3_600_000, ...options });
  return stdout.trim() === 'removed';
}

/** Names of the directories directly inside `path` on `host` (none when `path` does not exist). */
export async function remoteListDirectories(
  host: string,
  path: string,
  options: RemoteOptions = {},
): Promise<string[]> {
  const script = 'if [ -d "$1" ]; then find "$1" -mindepth 1 -maxdepth 1 -type d -printf "%f\\0"; fi';
  return (await runRemoteScript(host, script, [path], options)).split('\0').filter(Boolean);
}
