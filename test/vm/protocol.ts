/**
 * The command channel between a test on the host and the agent in the LVM test VM: one JSON object per
 * line over a virtio-serial port. The host sends requests with an id; the agent answers each with the
 * same id, in any order (requests run concurrently). The agent's first line is a `hello`.
 */

/** How a command runs in the guest. */
export interface GuestExecOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Written to the command's stdin, then closed; stdin is empty otherwise. */
  input?: string;
  /** The guest kills the command (SIGKILL) after this long; its result then has `timedOut`. */
  timeoutMs?: number;
}

/** What a finished guest command did. `exitCode` is null when a signal ended it. */
export interface GuestResult {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
}

/** An error thrown in the guest, as the host receives it. */
export interface RemoteErrorShape {
  name: string;
  message: string;
  code?: string;
  hint?: string;
  details?: Record<string, unknown>;
  stderr?: string;
  stack?: string;
  /** Facts computed in the guest where the error was caught (e.g. a provider's isNotFound verdict). */
  flags?: Record<string, boolean>;
}

export type AgentRequest =
  | { id: number; op: 'exec'; file: string; args: string[]; options: GuestExecOptions }
  | { id: number; op: 'spawn'; file: string; args: string[]; options: GuestExecOptions }
  | { id: number; op: 'wait'; pid: number }
  | { id: number; op: 'kill'; pid: number; signal: string }
  /** Import `module` (a path relative to the project's `dist/`) and await `fn(...args)`. */
  | { id: number; op: 'call'; module: string; fn: string; args: unknown[] };

export type AgentResponse =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: RemoteErrorShape };

export interface AgentHello {
  hello: { uptimeS: number; node: string; kernel: string };
}

/** The virtio-serial port name the agent listens on. */
export const agentPortName = 'dssnap.agent';
