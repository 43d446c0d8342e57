/**
 * What the AWS, GCP and Azure test clouds share: a work dir, an XFS pool of disk images (reflink: a
 * snapshot is an instant copy) behind the host simulator, data disks formatted and mounted for real, a
 * stack of disposers; and, on top of a cloud, a DSS host — DATA_DIR generated on the data disk, backup
 * options and config files for the provider, and the state a run may leave. Each cloud's own file
 * (`aws-cloud.ts`, `gcp-cloud.ts`, `azure-cloud.ts`) adds only its API fake, how the simulator follows
 * it, its faults and how it finds leftovers.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { expect } from 'vitest';
import { recoverRun } from '../../src/backup/recover.js';
import { type BackupOptions, backupOptionsSchema, resolveOptions } from '../../src/config.js';
import { dssStatus, stopDss } from '../../src/dss/control.js';
import { type DataDirInfo, inspectDataDir } from '../../src/dss/layout.js';
import { run } from '../../src/host/exec.js';
import { ensureUnmounted, mountsBelow } from '../../src/host/mounts.js';
import type { Logger } from '../../src/log.js';
import { leftoverJournals } from '../../src/procedure/journal.js';
import { createHostSimulator, type HostSimulator } from '../fakes/host-simulator.js';
import { type GenerateDataDirOptions, generateDataDir } from '../fixtures/generate-data-dir.js';
import { type CliResult, spawnDssnap } from './cli.js';
import { nobody } from './dss-host.js';
import { createLoopVolume } from './loop-volume.js';
import { requireRoot } from './require-root.js';

export type FsType = 'xfs' | 'ext4';

/** The cloud-independent part of a test cloud. */
export interface CloudBase {
  /** A temp dir for the test: state dir, mount root, destination and device links live here. */
  work: string;
  simulator: HostSimulator;
  /** Errors of work done in the background (device attaches): a test expects none. */
  hookErrors: unknown[];
  /** Run `step` at dispose, before the steps deferred earlier. */
  defer(step: () => Promise<unknown>): void;
  /** Make a filesystem on `device`, mount it at `mountPoint` (made if missing); unmounted at dispose. */
  formatAndMount(device: string, fsType: FsType, mountPoint: string): Promise<void>;
  dispose(): Promise<void>;
}

/**
 * Make the work dir `dssnap-<name>-…`, the image pool and the host simulator, whose device links go to
 * `<work>/<deviceDir>`; then `build` the cloud on it. Everything is disposed if `build` fails.
 */
export async function createCloud<T>(
  options: { name: string; poolMb: number; deviceDir: string },
  build: (base: CloudBase) => Promise<T>,
): Promise<T> {
  requireRoot();
  const work = await mkdtemp(join(tmpdir(), `dssnap-${options.name}-`));
  await chmod(work, 0o755);
  const disposers: Array<() => Promise<unknown>> = [() => rm(work, { recursive: true, force: true })];
  const defer = (step: () => Promise<unknown>): void => {
    disposers.push(step);
  };
  const dispose = async (): Promise<void> => {
    for (const step of disposers.splice(0).reverse()) await step().catch(() => undefined);
  };
  try {
    const pool = await createLoopVolume({ fsType: 'xfs', sizeMb: options.poolMb });
    defer(() => pool.dispose());
    const simulator = await createHostSimulator({
      imageDir: join(pool.mountPoint, 'images'),
      deviceDir: join(work, options.deviceDir),
    });
    defer(() => simulator.dispose());
    const mounted: string[] = [];
    defer(async () => {
      for (const mountPoint of mounted.reverse())
        await run('umount', ['-l', mountPoint]).catch(() => undefined);
    });
    return await build({
      work,
      simulator,
      hookErrors: [],
      defer,
      async formatAndMount(device, fsType, mountPoint) {
        await run(`mkfs.${fsType}`, fsType === 'xfs' ? ['-q', '-f', device] : ['-q', '-F', device], {
          timeoutMs: 60_000,
        });
        await mkdir(mountPoint, { recursive: true });
        await run('mount', [device, mountPoint]);
        mounted.push(mountPoint);
        await chmod(mountPoint, 0o755);
      },
      dispose,
    });
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** What a DSS host needs of its cloud. `L` is what the cloud reports left behind. */
export interface HarnessCloud<L> {
  work: string;
  /** The provider settings that point it at this cloud. */
  providerSettings(extra?: Record<string, unknown>): Record<string, unknown>;
  /** What dssnap left in the cloud and as devices on this host. */
  leftovers(): Promise<L>;
  /** Errors of the fakes' background work so far. */
  backgroundErrors(): unknown[];
  dispose(): Promise<void>;
}

/** What a run may have left on a host: compare with `cleanState(…)`. */
export interface HostState<L> {
  cloud: L;
  /** Mounts below the mount root. */
  mounts: string[];
  /** Journals of runs not finished or not recovered. */
  journals: number;
  /** Partial copies in the destination. */
  partials: string[];
  dss: 'running' | 'stopped';
  /** False when a filesystem of DATA_DIR is left frozen. */
  writable: boolean;
  hookErrors: unknown[];
}

/** Nothing left anywhere (`cloud` being the cloud's empty leftovers), DSS running, DATA_DIR writable. */
export function cleanState<L, X extends object = object>(cloud: L, extra?: X): HostState<L> & X {
  return {
    cloud,
    mounts: [],
    journals: 0,
    partials: [],
    dss: 'running',
    writable: true,
    hookErrors: [],
    ...(extra as X),
  };
}

/** What the cloud `C` reports left behind. */
export type LeftoversOf<C> = C extends HarnessCloud<infer L> ? L : never;

export interface CloudDssHost<C extends HarnessCloud<unknown>, X extends object = object> {
  cloud: C;
  dataDir: string;
  info: DataDirInfo;
  /** Every filesystem of DATA_DIR: the data disk's mount, then any mounted below DATA_DIR. */
  mountPoints: string[];
  destination: string;
  stateDir: string;
  mountRoot: string;
  /** Backup options for this host with its provider, `overrides` applied as flags. */
  options(overrides?: Record<string, unknown>, settings?: Record<string, unknown>): BackupOptions;
  /** A config file (JSON) with these provider options, for the CLI. */
  configFile(settings?: Record<string, unknown>): Promise<string>;
  /** The CLI flags naming this host: `--config <config> --provider … --data-dir … --state-dir …`. */
  cliArgs(config: string): string[];
  dssState(): Promise<'running' | 'stopped'>;
  /** What a run may have left: compare with the cloud's clean state. */
  state(): Promise<HostState<LeftoversOf<C>> & X>;
  dispose(): Promise<void>;
}

/**
 * A DSS host on `cloud`: DATA_DIR generated (tiny preset, owned by nobody) in `<dataMount>/dss`, a
 * directory inside the data disk's filesystem. `moreMounts` may then put parts of DATA_DIR on disks of
 * their own and returns their mount points; `extraState` adds cloud-specific fields to `state()`.
 * The caller disposes the cloud if this fails.
 */
export async function createCloudDssHost<C extends HarnessCloud<unknown>, X extends object = object>(
  cloud: C,
  options: {
    provider: string;
    dataMount: string;
    seed: number;
    generate?: Omit<GenerateDataDirOptions, 'dir'>;
    moreMounts?: (dataDir: string) => Promise<string[]>;
    extraState?: () => X;
    beforeDispose?: () => Promise<unknown>;
  },
): Promise<CloudDssHost<C, X>> {
  const dataDir = join(options.dataMount, 'dss');
  await generateDataDir({
    dir: dataDir,
    preset: 'tiny',
    seed: options.seed,
    owner: nobody,
    ...options.generate,
  });
  const mountPoints = [options.dataMount, ...((await options.moreMounts?.(dataDir)) ?? [])];
  const info = await inspectDataDir(dataDir);
  const destination = join(cloud.work, 'backups');
  const stateDir = join(cloud.work, 'state');
  const mountRoot = join(cloud.work, 'mnt');
  await mkdir(destination);
  return {
    cloud,
    dataDir: info.path,
    info,
    mountPoints,
    destination,
    stateDir,
    mountRoot,
    options: (overrides = {}, settings = {}) =>
      resolveOptions(backupOptionsSchema, {
        flags: {
          dataDir: info.path,
          to: destination,
          stateDir,
          mountRoot,
          provider: options.provider,
          providerOptions: cloud.providerSettings(settings),
          ...overrides,
        },
      }),
    async configFile(settings = {}) {
      const path = join(cloud.work, `dssnap-${Math.random().toString(36).slice(2)}.json`);
      await writeFile(
        path,
        JSON.stringify({ 'provider-options': cloud.providerSettings(settings) }, null, 2),
      );
      return path;
    },
    cliArgs: (config) => [
      ...['--config', config, '--provider', options.provider],
      ...['--data-dir', info.path, '--state-dir', stateDir],
    ],
    dssState: () => dssStatus(info),
    state: async () => ({
      cloud: (await cloud.leftovers()) as LeftoversOf<C>,
      mounts: existsSync(mountRoot) ? await mountsBelow(mountRoot) : [],
      journals: leftoverJournals(stateDir).length,
      partials: (await readdir(destination)).filter((name) => name.startsWith('.partial-')),
      dss: await dssStatus(info),
      writable: (await Promise.all(mountPoints.map(isWritable))).every(Boolean),
      hookErrors: cloud.backgroundErrors(),
      ...(options.extraState?.() as X),
    }),
    dispose: async () => {
      await stopDss(info).catch(() => undefined);
      await options.beforeDispose?.().catch(() => undefined);
      await cloud.dispose();
    },
  };
}

/** Run `use` on a freshly made cloud; dispose the cloud if it throws. */
export async function disposeOnFailure<C extends { dispose(): Promise<void> }, T>(
  cloud: C,
  use: (cloud: C) => Promise<T>,
): Promise<T> {
  try {
    return await use(cloud);
  } catch (error) {
    await cloud.dispose();
    throw error;
  }
}

/** The exit code, with the output in the failure message when it is not the expected one. */
export function expectExit(result: CliResult, code: number): void {
  expect(result.exitCode, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`).toBe(code);
}

/** Recover the runs this process left (they ran here, so by id, as the next run would), then expect a clean host. */
export async function expectRecoveredClean<L, X extends object>(
  host: { stateDir: string; state(): Promise<HostState<L> & X> },
  clean: HostState<L> & X,
  log: Logger,
): Promise<void> {
  for (const journal of leftoverJournals(host.stateDir))
    await recoverRun(host.stateDir, basename(journal, '.jsonl'), log);
  expect(await host.state()).toEqual(clean);
}

/** For a contract suite's cleanup: dispose the cloud, then fail if it left anything or a hook failed. */
export async function disposeExpectingNothingLeft(cloud: HarnessCloud<object>): Promise<void> {
  const left = (await cloud.leftovers()) as Record<string, string[]>;
  const errors = cloud.backgroundErrors();
  await cloud.dispose();
  if (errors.length > 0) throw errors[0];
  if (Object.values(left).some((ids) => ids.length > 0))
    throw new Error(`The contract suite left resources behind: ${JSON.stringify(left)}`);
}

/** False when writing into `dir` blocks (a frozen filesystem): probed in a child with a timeout. */
export async function isWritable(dir: string): Promise<boolean> {
  const probe = join(dir, '.dssnap-write-probe');
  try {
    await run('timeout', ['5', 'touch', probe]);
    await rm(probe, { force: true });
    return true;
  } catch {
    return false;
  }
}

/**
 * Mount a snapshot image of the host simulator read-only without log recovery — what the snapshot
 * holds, as the cloud would give it back — for comparisons.
 */
export async function withImageMounted<T>(image: string, use: (root: string) => Promise<T>): Promise<T> {
  const mountPoint = await mkdtemp(join(tmpdir(), 'dssnap-snap-'));
  const loop = (await run('losetup', ['-f', '--show', '-r', image])).stdout.trim();
  try {
    // -p: probe the device itself; blkid's cache may remember what this loop device held before.
    const fsType = (await run('blkid', ['-p', '-o', 'value', '-s', 'TYPE', loop])).stdout.trim();
    await run('mount', ['-o', fsType === 'xfs' ? 'ro,nouuid,norecovery' : 'ro,noload', loop, mountPoint]);
    return await use(mountPoint);
  } finally {
    await ensureUnmounted(mountPoint);
    await run('losetup', ['-d', loop]).catch(() => undefined);
    await rm(mountPoint, { recursive: true, force: true });
  }
}

/** Print and return how many API calls `what` made, per call name (the README's call counts). */
export function reportCalls(api: string, what: string, counts: Record<string, number>): number {
  const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
  const detail = Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, n]) => `${name} ${n}`)
    .join(', ');
  console.log(`${api} calls for ${what}: ${total} (${detail})`);
  return total;
}

/**
 * Run `dssnap backup <args>` in a child and SIGKILL it as soon as its partial copy shows in
 * `destination` (snapshot taken, exposure mounted, copy under way); resolves once the child is gone.
 */
export async function killBackupMidCopy(
  args: readonly string[],
  destination: string,
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<void> {
  const child = spawnDssnap(['backup', ...args], options.env ? { env: options.env } : {});
  const timeoutMs = options.timeoutMs ?? 180_000;
  const deadline = Date.now() + timeoutMs;
  let appeared = false;
  while (!appeared && Date.now() < deadline && child.exitCode === null) {
    appeared = (await readdir(destination)).some((name) => name.startsWith('.partial-'));
    if (!appeared) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  child.kill('SIGKILL');
  const result = await child;
  if (!appeared) {
    throw new Error(
      `No partial copy appeared in ${destination} within ${timeoutMs} ms (backup exit code ${result.exitCode}):\n${String(result.stderr)}`,
    );
  }
}
