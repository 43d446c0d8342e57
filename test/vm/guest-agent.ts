/**
 * The agent inside the LVM test VM (started by guest-stage2.sh): reads requests from the virtio-serial
 * port given as its argument and answers them (protocol.ts). It runs commands and calls functions of
 * the project's built modules in this one warm Node process — Node in the TCG guest is ~12× slower
 * than on the host, so loading modules once per VM, not once per command, is what keeps the suite fast.
 * Exits when the host closes the channel; the stage-2 script then powers the VM off.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { openSync, read, readFileSync, write } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type {
  AgentRequest,
  AgentResponse,
  GuestExecOptions,
  GuestResult,
  RemoteErrorShape,
} from './protocol.js';

/** dist/ of the project: this file is dist/test/vm/guest-agent.js. */
const distRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Running {
  child: ChildProcess;
  result: Promise<GuestResult>;
}

const running = new Map<number, Running>();

/** Start a command; the promise resolves when it ends, whatever its exit code. */
function start(file: string, args: readonly string[], options: GuestExecOptions): Running {
  const started = performance.now();
  const child = spawn(file, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  if (options.input !== undefined) child.stdin?.end(options.input);
  const timer =
    options.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, options.timeoutMs);
  const result = new Promise<GuestResult>((resolvePromise) => {
    child.on('error', (error) => {
      stderr += `${error.message}\n`;
    });
    child.on('close', (exitCode, signal) => {
      if (timer) clearTimeout(timer);
      resolvePromise({
        exitCode,
        signal,
        stdout,
        stderr,
        timedOut,
        durationMs: Math.round(performance.now() - started),
      });
    });
  });
  return { child, result };
}

async function handle(request: AgentRequest): Promise<unknown> {
  switch (request.op) {
    case 'exec':
      return start(request.file, request.args, request.options).result;
    case 'spawn': {
      const entry = start(request.file, request.args, request.options);
      const pid = entry.child.pid;
      if (pid === undefined) return Promise.reject((await entry.result).stderr);
      running.set(pid, entry);
      return { pid };
    }
    case 'wait': {
      const entry = running.get(request.pid);
      if (!entry) throw new Error(`No process ${request.pid} was spawned by the agent`);
      const result = await entry.result;
      running.delete(request.pid);
      return result;
    }
    case 'kill': {
      const entry = running.get(request.pid);
      if (!entry) throw new Error(`No process ${request.pid} was spawned by the agent`);
      entry.child.kill(request.signal as NodeJS.Signals);
      return null;
    }
    case 'call': {
      const module = (await import(pathToFileURL(join(distRoot, request.module)).href)) as Record<
        string,
        unknown
      >;
      const fn = module[request.fn];
      if (typeof fn !== 'function') throw new Error(`${request.module} exports no function ${request.fn}`);
      return (await (fn as (...args: unknown[]) => unknown)(...request.args)) ?? null;
    }
  }
}

/** An error as plain JSON: its message, its DssnapError fields, a command's stderr, and its flags. */
export function serializeError(error: unknown): RemoteErrorShape {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const fields = error as Error & {
    code?: unknown;
    hint?: unknown;
    details?: unknown;
    stderr?: unknown;
    flags?: unknown;
  };
  return {
    name: error.name,
    message: error.message,
    ...(typeof fields.code === 'string' ? { code: fields.code } : {}),
    ...(typeof fields.hint === 'string' ? { hint: fields.hint } : {}),
    ...(fields.details && typeof fields.details === 'object'
      ? { details: fields.details as Record<string, unknown> }
      : {}),
    ...(typeof fields.stderr === 'string' ? { stderr: fields.stderr } : {}),
    ...(fields.flags && typeof fields.flags === 'object'
      ? { flags: fields.flags as Record<string, boolean> }
      : {}),
    ...(error.stack ? { stack: error.stack } : {}),
  };
}

function readChunk(fd: number, buffer: Buffer): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    read(fd, buffer, 0, buffer.length, null, (error, bytes) =>
      error ? reject(error) : resolvePromise(bytes),
    );
  });
}

function writeAll(fd: number, data: Buffer): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    write(fd, data, (error, written) => {
      if (error) reject(error);
      else if (written < data.length) writeAll(fd, data.subarray(written)).then(resolvePromise, reject);
      else resolvePromise();
    });
  });
}

async function main(): Promise<void> {
  const port = process.argv[2];
  if (!port) throw new Error('usage: guest-agent.js /dev/vportNpM');
  // One descriptor for both directions: a virtio port may be opened by one process at a time.
  const fd = openSync(port, 'r+');
  let writing = Promise.resolve();
  const send = (message: unknown): void => {
    const line = Buffer.from(`${JSON.stringify(message)}\n`);
    writing = writing
      .then(() => writeAll(fd, line))
      .catch((error: unknown) => {
        process.stderr.write(`agent: write failed: ${String(error)}\n`);
      });
  };
  const buffer = Buffer.alloc(64 * 1024);
  let pending = '';
  let heardFromHost = false;
  for (;;) {
    const bytes = await readChunk(fd, buffer);
    if (bytes === 0) {
      // EOF: the host is not connected. Before its first request that only means "not yet".
      if (heardFromHost) break;
      await new Promise((resolvePromise) => setTimeout(resolvePromise, 50));
      continue;
    }
    if (!heardFromHost) {
      // The host knocks with blank lines until this answer: neither side can tell when the other is there.
      heardFromHost = true;
      send({
        hello: {
          uptimeS: Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]),
          node: process.version,
          kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
        },
      });
    }
    pending += buffer.toString('utf8', 0, bytes);
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      const request = JSON.parse(line) as AgentRequest;
      handle(request).then(
        (value) => send({ id: request.id, ok: true, value } satisfies AgentResponse),
        (error: unknown) =>
          send({ id: request.id, ok: false, error: serializeError(error) } satisfies AgentResponse),
      );
    }
  }
  for (const { child } of running.values()) child.kill('SIGKILL');
  await writing;
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(
      `agent: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
