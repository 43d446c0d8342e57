/**
 * The LVM test VM (DESIGN.md §3): this machine's kernel has no device-mapper, so tests that need real
 * LVM boot a small qemu VM — a Debian kernel, the host root shared read-only over 9p under an overlay,
 * scratch disks — and run things inside it through the guest agent (protocol.ts). A boot and Node's
 * start in the guest cost tens of seconds under TCG: boot it once (`beforeAll`) for many cases — all
 * LVM suites share one (test/integration/lvm.test.ts) — and `dispose()` it in `afterAll`.
 *
 *     const vm = await bootVm();
 *     await vm.sh('pvcreate /dev/vda && vgcreate vg /dev/vda');
 *     const differences = await vm.call('test/support/tree-compare.js', 'compareTrees', a, b);
 *
 * Paths are the same on both sides for the project (read-only in the guest) and for `vm.shared`, a
 * read-write directory where the guest leaves results for the host. Everything else the guest writes
 * goes to its tmpfs overlay and disappears with it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { findTool, lastLines } from '../../src/host/exec.js';
import { requireRoot } from '../support/require-root.js';
import {
  type AgentHello,
  type AgentRequest,
  type AgentResponse,
  agentPortName,
  type GuestExecOptions,
  type GuestResult,
  type RemoteErrorShape,
} from './protocol.js';

/** The project root, whether this module runs from test/vm/ (vitest) or dist/test/vm/ (built). */
export const projectDir = projectRoot(dirname(fileURLToPath(import.meta.url)));
const agentScript = join(projectDir, 'dist', 'test', 'vm', 'guest-agent.js');
const prepareScript = join(projectDir, 'test', 'vm', 'prepare-assets.sh');

export interface VmAssets {
  kernelVersion: string;
  kernel: string;
  initramfs: string;
  modulesDir: string;
}

export interface BootOptions {
  /** Guest memory; default 1024 (the guest's root overlay is a tmpfs: keep big files on the disks). */
  memoryMb?: number;
  /**
   * Sizes of the sparse scratch disks, /dev/vda, /dev/vdb… in the guest; default one of 4096. Suites
   * sharing a VM each take their own disk (their own volume group).
   */
  disksMb?: readonly number[];
  /** From qemu's start to the agent's hello; default 180 s (TCG on a busy 2-core host). */
  bootTimeoutMs?: number;
  /** Where prepare-assets.sh keeps the kernel and initramfs; default $DSSNAP_VM_CACHE or /var/cache/dssnap-vm. */
  cacheDir?: string;
}

export interface GuestExec extends GuestExecOptions {
  /** Resolve with the result whatever the exit code (default: reject unless it is 0). */
  reject?: boolean;
}

export interface GuestProcess {
  readonly pid: number;
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Resolves when the process ends, whatever its exit code. */
  wait(): Promise<GuestResult>;
}

export interface Vm {
  /** Read-write in the guest at the same path: files the guest writes here are visible on the host. */
  readonly shared: string;
  readonly accel: 'kvm' | 'tcg';
  /** Seconds from kernel start to the agent's hello, as the guest measured it. */
  readonly bootS: number;
  /** Run a command in the guest; rejects with GuestCommandError unless it exits 0 (or `reject: false`). */
  exec(file: string, args?: readonly string[], options?: GuestExec): Promise<GuestResult>;
  /** `sh -ec script` in the guest. */
  sh(script: string, options?: GuestExec): Promise<GuestResult>;
  /** Start a command in the guest without waiting for it. */
  spawn(file: string, args?: readonly string[], options?: GuestExecOptions): Promise<GuestProcess>;
  /**
   * Call `fn(...args)` exported by a built module of the project, in the guest (`module` relative to
   * dist/, e.g. `test/support/tree-compare.js`). Arguments and result travel as JSON; an error thrown
   * in the guest is rethrown here as a RemoteError with the same message, code and hint.
   */
  call<T>(module: string, fn: string, ...args: unknown[]): Promise<T>;
  /** The guest's console (kernel messages, boot stages) so far. */
  consoleLog(): string;
  /** Power the guest off (SIGKILL after 15 s), remove the scratch disk and shared dir. Idempotent. */
  dispose(): Promise<void>;
}

/** An error thrown in the guest, rebuilt on the host with its message, code, hint and flags. */
export class RemoteError extends Error {
  readonly code: string | undefined;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown>;
  readonly stderr: string | undefined;
  readonly flags: Record<string, boolean>;
  readonly remoteStack: string | undefined;

  constructor(shape: RemoteErrorShape) {
    super(shape.message);
    this.name = shape.name;
    this.code = shape.code;
    this.hint = shape.hint;
    this.details = shape.details ?? {};
    this.stderr = shape.stderr;
    this.flags = shape.flags ?? {};
    this.remoteStack = shape.stack;
  }
}

/** A guest command that did not exit 0. */
export class GuestCommandError extends Error {
  readonly result: GuestResult;

  constructor(command: string, result: GuestResult) {
    const how = result.timedOut
      ? 'timed out'
      : result.signal
        ? `was killed by ${result.signal}`
        : `exited with code ${result.exitCode}`;
    super(`In the VM, ${command} ${how}: ${lastLines(result.stderr || result.stdout, 15)}`);
    this.name = 'GuestCommandError';
    this.result = result;
  }
}

/**
 * Prepare (once, cached) and return the VM's kernel, initramfs and modules. Throws with the missing
 * package named when a host tool is absent.
 */
export async function vmAssets(cacheDir?: string): Promise<VmAssets> {
  const result = await execa('bash', [prepareScript, ...(cacheDir ? [cacheDir] : [])], {
    reject: false,
    timeout: 300_000,
  });
  if (result.exitCode !== 0) {
    throw new Error(`Preparing the VM assets failed (${prepareScript}): ${String(result.stderr).trim()}`);
  }
  const path = String(result.stdout).trim().split('\n').pop()!;
  return JSON.parse(readFileSync(path, 'utf8')) as VmAssets;
}

/** KVM only where it works: a real vmx/svm CPU flag and not the paravirtual kvm_pvm (DESIGN.md §3). */
function chooseAccel(): 'kvm' | 'tcg' {
  if (process.env.DSSNAP_VM_ACCEL === 'tcg') return 'tcg';
  if (!existsSync('/dev/kvm') || existsSync('/sys/module/kvm_pvm')) return 'tcg';
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return /^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo) ? 'kvm' : 'tcg';
}

function requireHostTools(): string {
  requireRoot();
  const qemu = findTool('qemu-system-x86_64');
  const missing = [
    ...(qemu ? [] : ['qemu-system-x86_64 (package qemu-system-x86)']),
    ...(existsSync('/bin/busybox') ? [] : ['/bin/busybox (package busybox-static)']),
    ...(findTool('lvcreate') ? [] : ['lvcreate (package lvm2; the guest runs the host’s tools)']),
  ];
  if (missing.length > 0) {
    throw new Error(`The LVM test VM needs: ${missing.join(', ')}. .ci/run installs them; so can apt-get.`);
  }
  if (!existsSync(agentScript)) {
    throw new Error(
      `The guest agent is not built (${agentScript}): run 'npm run build' first ('npm test' does).`,
    );
  }
  return qemu!;
}

/** Boot the VM and return once its agent answers. On failure, cleans up and throws with the console tail. */
export async function bootVm(options: BootOptions = {}): Promise<Vm> {
  const qemu = requireHostTools();
  const assets = await vmAssets(options.cacheDir);
  const work = await mkdtemp(join(tmpdir(), 'dssnap-vm-'));
  const shared = join(work, 'shared');
  await mkdir(shared);
  const disks: string[] = [];
  for (const [i, sizeMb] of (options.disksMb ?? [4096]).entries()) {
    const disk = join(work, `scratch${i}.img`);
    const handle = await open(disk, 'w');
    await handle.truncate(sizeMb * 1024 * 1024);
    await handle.close();
    disks.push(disk);
  }
  const socketPath = join(work, 'agent.sock');
  const consolePath = join(work, 'console.log');
  const accel = chooseAccel();
  const ninep = 'security_model=passthrough,multidevs=remap';
  const args = [
    ...['-machine', 'q35', '-smp', '2', '-m', String(options.memoryMb ?? 1024)],
    ...(accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi', '-cpu', 'max']),
    ...['-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot'],
    ...['-kernel', assets.kernel, '-initrd', assets.initramfs],
    '-append',
    [
      'console=ttyS0 loglevel=4 panic=-1',
      `dssnap.project=${projectDir} dssnap.run=${shared} dssnap.modules=${assets.modulesDir}`,
    ].join(' '),
    ...['-serial', `file:${consolePath}`],
    ...['-fsdev', `local,id=hostroot,path=/,${ninep},readonly=on`],
    ...['-device', 'virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot'],
    ...['-fsdev', `local,id=project,path=${projectDir},${ninep},readonly=on`],
    ...['-device', 'virtio-9p-pci,fsdev=project,mount_tag=project'],
    ...['-fsdev', `local,id=run,path=${shared},${ninep}`],
    ...['-device', 'virtio-9p-pci,fsdev=run,mount_tag=run'],
    ...disks.flatMap((disk, i) => [
      ...['-drive', `file=${disk},if=none,id=scratch${i},format=raw,cache=unsafe,discard=unmap`],
      ...['-device', `virtio-blk-pci,drive=scratch${i},serial=scratch${i}`],
    ]),
    ...['-device', 'virtio-serial-pci'],
    ...['-chardev', `socket,id=agent,path=${socketPath},server=on,wait=off`],
    ...['-device', `virtserialport,chardev=agent,name=${agentPortName}`],
  ];
  const child = spawn(qemu, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let qemuStderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    qemuStderr += chunk.toString();
  });
  // A test process that dies (a signal, a crash) takes its VM and scratch disk with it.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);

  const consoleLog = (): string => (existsSync(consolePath) ? readFileSync(consolePath, 'utf8') : '');
  const diagnostics = async (): Promise<string> => {
    const agentLog = await readFile(join(shared, 'agent.log'), 'utf8').catch(() => '');
    return [
      qemuStderr.trim() && `qemu: ${lastLines(qemuStderr, 10)}`,
      `console:\n${lastLines(consoleLog(), 25)}`,
      agentLog.trim() && `agent.log:\n${lastLines(agentLog, 25)}`,
    ]
      .filter(Boolean)
      .join('\n');
  };

  let disposed = false;
  async function dispose(): Promise<void> {
    if (disposed) return;
    disposed = true;
    channel?.close();
    await waitForExit(child, 15_000);
    process.removeListener('exit', killOnExit);
    await rm(work, { recursive: true, force: true });
  }

  let channel: Channel | undefined;
  try {
    channel = await connectChannel(socketPath, child, options.bootTimeoutMs ?? 180_000, diagnostics);
  } catch (error) {
    const details = await diagnostics();
    await dispose();
    throw new Error(`The LVM test VM did not boot (${accel}): ${(error as Error).message}\n${details}`);
  }
  const connected = channel;

  async function exec(
    file: string,
    args: readonly string[] = [],
    options: GuestExec = {},
  ): Promise<GuestResult> {
    const { reject = true, ...execOptions } = options;
    const result = await connected.request<GuestResult>({
      op: 'exec',
      file,
      args: [...args],
      options: execOptions,
    });
    if (reject && result.exitCode !== 0) throw new GuestCommandError([file, ...args].join(' '), result);
    return result;
  }

  return {
    shared,
    accel,
    bootS: connected.hello.uptimeS,
    exec,
    sh: (script, options) => exec('/bin/sh', ['-ec', script], options),
    async spawn(file, args = [], options = {}) {
      const { pid } = await connected.request<{ pid: number }>({
        op: 'spawn',
        file,
        args: [...args],
        options,
      });
      return {
        pid,
        kill: async (signal = 'SIGTERM') => {
          await connected.request({ op: 'kill', pid, signal });
        },
        wait: () => connected.request<GuestResult>({ op: 'wait', pid }),
      };
    },
    call: <T>(module: string, fn: string, ...args: unknown[]) =>
      connected.request<T>({ op: 'call', module, fn, args }),
    consoleLog,
    dispose,
  };
}

interface Channel {
  hello: AgentHello['hello'];
  request<T>(request: DistributiveOmit<AgentRequest, 'id'>): Promise<T>;
  close(): void;
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/** Connect to the agent's socket and knock until it says hello; then a request/response channel. */
async function connectChannel(
  socketPath: string,
  child: ChildProcess,
  bootTimeoutMs: number,
  diagnostics: () => Promise<string>,
): Promise<Channel> {
  const deadline = Date.now() + bootTimeoutMs;
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  while (!existsSync(socketPath)) {
    if (exited) throw new Error('qemu exited at start');
    if (Date.now() > deadline) throw new Error('qemu created no agent socket');
    await delay(20);
  }
  const socket: Socket = await new Promise((resolvePromise, reject) => {
    const s = connect(socketPath);
    s.once('connect', () => resolvePromise(s));
    s.once('error', reject);
  });
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let buffered = '';
  let closedReason: string | undefined;
  let onHello: ((hello: AgentHello['hello']) => void) | undefined;

  const failAll = async (reason: string): Promise<void> => {
    if (closedReason) return;
    closedReason = reason;
    const details = await diagnostics();
    for (const { reject } of pending.values()) reject(new Error(`${reason}\n${details}`));
    pending.clear();
  };
  socket.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      const message = JSON.parse(line) as AgentResponse | AgentHello;
      if ('hello' in message) {
        onHello?.(message.hello);
        continue;
      }
      const waiter = pending.get(message.id);
      if (!waiter) continue;
      pending.delete(message.id);
      if (message.ok) waiter.resolve(message.value);
      else waiter.reject(new RemoteError(message.error));
    }
  });
  socket.on('error', () => undefined);
  socket.on('close', () => void failAll('The channel to the VM agent closed'));
  child.once('exit', (code, signal) => void failAll(`qemu exited (${signal ?? `code ${code}`})`));

  const hello = await new Promise<AgentHello['hello']>((resolvePromise, reject) => {
    const knock = setInterval(() => {
      if (exited || closedReason) {
        clearInterval(knock);
        reject(new Error(closedReason ?? 'qemu exited during boot'));
      } else if (Date.now() > deadline) {
        clearInterval(knock);
        child.kill('SIGKILL');
        reject(new Error(`no answer from the guest agent within ${Math.round(bootTimeoutMs / 1000)} s`));
      } else socket.write('\n');
    }, 250);
    onHello = (value) => {
      clearInterval(knock);
      resolvePromise(value);
    };
  });

  return {
    hello,
    request<T>(request: DistributiveOmit<AgentRequest, 'id'>): Promise<T> {
      if (closedReason) return Promise.reject(new Error(closedReason));
      const id = nextId++;
      return new Promise<T>((resolvePromise, reject) => {
        pending.set(id, { resolve: resolvePromise as (value: unknown) => void, reject });
        socket.write(`${JSON.stringify({ ...request, id })}\n`);
      });
    },
    close() {
      closedReason ??= 'The VM was disposed';
      socket.end();
    },
  };
}

function projectRoot(from: string): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json'))) {
    if (dirname(dir) === dir) throw new Error(`No package.json above ${from}`);
    dir = dirname(dir);
  }
  return dir;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolvePromise) => setTimeout(resolvePromise, ms));
}

/** Wait for the process to exit; SIGKILL it after `graceMs`. */
async function waitForExit(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolvePromise) => child.once('exit', () => resolvePromise()));
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
