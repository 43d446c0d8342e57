/**
 * A whole "Compute Engine VM" for tests: the stateful Compute fake behind the fault-injecting proxy, a
 * fake metadata server handing out the service account's token (Application Default Credentials find
 * it through GCE_METADATA_HOST, as on a VM), and the host simulator turning what the fake does into real
 * devices — the VM's data disk is a real XFS or ext4 on a loop device, mounted, holding a generated
 * DATA_DIR; a snapshot copies its image; a disk made from a snapshot and attached here appears as a loop
 * device with the `google-<device name>` link the provider waits for. Only Google's control plane is
 * faked: the SDK, HTTP, credentials, devices, mounts, fsfreeze and the copy are real.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BackupOptions, backupOptionsSchema, resolveOptions } from '../../src/config.js';
import { dssStatus, stopDss } from '../../src/dss/control.js';
import { type DataDirInfo, inspectDataDir } from '../../src/dss/layout.js';
import { run } from '../../src/host/exec.js';
import { ensureUnmounted, mountsBelow } from '../../src/host/mounts.js';
import { leftoverJournals } from '../../src/procedure/journal.js';
import { type FaultProxy, type FaultRule, startFaultProxy } from '../fakes/fault-proxy.js';
import { type GcpComputeFake, googleErrorBody, startGcpComputeFake } from '../fakes/gcp-compute.js';
import { type GcpMetadataFake, startGcpMetadataFake } from '../fakes/gcp-metadata.js';
import { matchRoute } from '../fakes/gcp-proto.js';
import { createHostSimulator, type HostSimulator } from '../fakes/host-simulator.js';
import { type GenerateDataDirOptions, generateDataDir } from '../fixtures/generate-data-dir.js';
import { nobody } from './dss-host.js';
import { createLoopVolume, type LoopVolume } from './loop-volume.js';
import { requireRoot } from './require-root.js';

export const gcpProject = 'dss-prod-4711';
export const gcpZone = 'europe-west1-b';
export const gcpInstance = 'dss-design-1';

export type GcpFault = 'throttle' | 'rate-403' | 'unavailable' | 'reset';

export interface GcpTestCloud {
  compute: GcpComputeFake;
  metadata: GcpMetadataFake;
  proxy: FaultProxy;
  simulator: HostSimulator;
  work: string;
  /** Environment for the provider's process (ADC through the fake metadata server). */
  env: Readonly<Record<string, string>>;
  /** The gcp provider settings that point it at this cloud. */
  providerSettings(extra?: Record<string, unknown>): Record<string, unknown>;
  /** A persistent disk attached here as `google-<name>`, with a filesystem, mounted at `mountPoint`. */
  createDataDisk(options: {
    name: string;
    fsType: 'xfs' | 'ext4';
    mountPoint: string;
    sizeGb?: number;
  }): Promise<string>;
  /** Fail Compute calls of `method` (`Disks.CreateSnapshot`, a RegExp, or all) with Google's own answers. */
  fail(
    method: string | RegExp | undefined,
    fault: GcpFault,
    rule?: Omit<FaultRule, 'action' | 'match'>,
  ): void;
  /** What dssnap left: temporary disks, unretained snapshots, devices of temporary disks. */
  leftovers(): Promise<{ disks: string[]; snapshots: string[]; devices: string[] }>;
  dispose(): Promise<void>;
}

/** Start the fakes, the proxy and the host simulator; ADC is pointed at the metadata fake. */
export async function createGcpTestCloud(): Promise<GcpTestCloud> {
  requireRoot();
  const work = await mkdtemp(join(tmpdir(), 'dssnap-gcp-'));
  await chmod(work, 0o755);
  const disposers: Array<() => Promise<unknown>> = [() => rm(work, { recursive: true, force: true })];
  const dispose = async (): Promise<void> => {
    for (const step of disposers.reverse()) await step().catch(() => undefined);
  };
  try {
    // Images live on XFS (reflink): a snapshot of a disk is an instant copy.
    const pool: LoopVolume = await createLoopVolume({ fsType: 'xfs', sizeMb: 4096 });
    disposers.push(() => pool.dispose());
    const simulator = await createHostSimulator({
      imageDir: join(pool.mountPoint, 'images'),
      deviceDir: join(work, 'dev', 'disk', 'by-id'),
    });
    disposers.push(() => simulator.dispose());
    const metadata = await startGcpMetadataFake({
      project: gcpProject,
      zone: gcpZone,
      instance: gcpInstance,
    });
    disposers.push(() => metadata.close());
    const compute = await startGcpComputeFake({
      project: gcpProject,
      zone: gcpZone,
      tokens: metadata.tokens,
      backing: {
        snapshot: (disk, snapshot) => simulator.snapshotDisk(disk, snapshot),
        restore: (snapshot, disk) => simulator.createDiskFromSnapshot(disk, snapshot),
        // The device shows up a moment after the operation is DONE, as on a real VM.
        attach: async (disk, deviceName, readOnly) => {
          simulator
            .attach(disk, [`google-${deviceName}`], { delayMs: 100, readOnly })
            .catch((error: unknown) => (proxy.hookErrors as unknown[]).push(error));
        },
        detach: (disk) => simulator.detach(disk),
        deleteDisk: (disk) => simulator.deleteDisk(disk),
        deleteSnapshot: (snapshot) => simulator.deleteSnapshot(snapshot),
      },
    });
    disposers.push(() => compute.close());
    compute.addInstance(gcpInstance);
    const proxy = await startFaultProxy({
      target: compute.url,
      classify: (request) =>
        matchRoute(request.method, request.path.split('?')[0]!)?.route.id ??
        `${request.method} ${request.path.split('?')[0]}`,
    });
    disposers.push(() => proxy.close());
    const mounted: string[] = [];
    disposers.push(async () => {
      for (const mountPoint of mounted.reverse())
        await run('umount', ['-l', mountPoint]).catch(() => undefined);
    });
    const dataDisks = new Set<string>();
    const env = {
      GCE_METADATA_HOST: metadata.host,
      // No user or key-file credentials may shadow the VM's service account in tests.
      GOOGLE_APPLICATION_CREDENTIALS: '',
      HOME: work,
    };

    const cloud: GcpTestCloud = {
      compute,
      metadata,
      proxy,
      simulator,
      work,
      env,
      providerSettings: (extra = {}) => ({
        apiEndpoint: proxy.url,
        resourceManagerEndpoint: proxy.url,
        metadataEndpoint: metadata.url,
        deviceDir: simulator.deviceDir,
        requestTimeout: '5s',
        pollInterval: '50ms',
        operationTimeout: '30s',
        ...extra,
      }),
      async createDataDisk({ name, fsType, mountPoint, sizeGb = 1 }) {
        await simulator.createDisk(name, sizeGb * 1024 ** 3);
        await simulator.attach(name, [`google-${name}`]);
        compute.addDisk(name, { sizeGb, attachTo: { instance: gcpInstance, deviceName: name } });
        dataDisks.add(name);
        const loop = simulator.deviceOf(name)!;
        await run(`mkfs.${fsType}`, fsType === 'xfs' ? ['-q', '-f', loop] : ['-q', '-F', loop], {
          timeoutMs: 60_000,
        });
        await mkdir(mountPoint, { recursive: true });
        await run('mount', [loop, mountPoint]);
        mounted.push(mountPoint);
        await chmod(mountPoint, 0o755);
        return loop;
      },
      fail(method, fault, rule = {}) {
        proxy.inject({
          ...rule,
          ...(method === undefined ? {} : { match: { name: method } }),
          action: faultAction(fault),
        });
      },
      async leftovers() {
        await compute.settle();
        await simulator.settled();
        return {
          disks: [...compute.disks.values()]
            .filter((d) => d.labels['dssnap-role'] === 'exposure')
            .map((d) => d.name)
            .sort(),
          snapshots: [...compute.snapshots.values()]
            .filter((s) => s.labels['dssnap-run-id'] !== undefined && s.labels['dssnap-retain'] !== 'true')
            .map((s) => s.name)
            .sort(),
          devices: simulator.attached().filter((id) => !dataDisks.has(id)),
        };
      },
      dispose,
    };
    return cloud;
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** Google's answer (or a network failure) for each kind of fault. */
export function faultAction(fault: GcpFault): FaultRule['action'] {
  const json = { 'content-type': 'application/json; charset=UTF-8' };
  switch (fault) {
    case 'throttle':
      return {
        kind: 'respond',
        status: 429,
        headers: json,
        body: googleErrorBody(429, 'rateLimitExceeded', 'Rate Limit Exceeded', 'usageLimits'),
      };
    case 'rate-403':
      return {
        kind: 'respond',
        status: 403,
        headers: json,
        body: googleErrorBody(
          403,
          'rateLimitExceeded',
          "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute'",
          'usageLimits',
        ),
      };
    case 'unavailable':
      return {
        kind: 'respond',
        status: 503,
        headers: json,
        body: googleErrorBody(503, 'backendError', 'The service is currently unavailable.'),
      };
    case 'reset':
      return { kind: 'reset' };
  }
}

export interface GcpHostState {
  cloud: { disks: string[]; snapshots: string[]; devices: string[] };
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
  /** Responses of the Compute fake outside Google's API description, and effects it failed to carry out. */
  drift: string[];
}

/** Nothing left anywhere, DSS running, DATA_DIR writable, the fake true to the API. */
export const cleanGcpHostState: GcpHostState = {
  cloud: { disks: [], snapshots: [], devices: [] },
  mounts: [],
  journals: 0,
  partials: [],
  dss: 'running',
  writable: true,
  hookErrors: [],
  drift: [],
};

export interface GcpDssHost {
  cloud: GcpTestCloud;
  dataDir: string;
  info: DataDirInfo;
  /** Every filesystem of DATA_DIR (the data disk's mount, then any disk mounted below DATA_DIR). */
  mountPoints: string[];
  destination: string;
  stateDir: string;
  mountRoot: string;
  /** Backup options for this host with the gcp provider, `overrides` applied as flags. */
  options(overrides?: Record<string, unknown>, settings?: Record<string, unknown>): BackupOptions;
  /** A config file (JSON) with these provider options, for the CLI. */
  configFile(settings?: Record<string, unknown>): Promise<string>;
  /** What a run may have left: compare with `cleanGcpHostState`. */
  state(): Promise<GcpHostState>;
  dispose(): Promise<void>;
}

/**
 * A DSS host on Compute Engine: the disk `dss-data` (XFS by default) mounted at `<work>/data`, DATA_DIR
 * generated in `<work>/data/dss`, owned by nobody; with `datasetsDisk`, a second disk `dss-datasets`
 * mounted at DATA_DIR/managed_datasets holding that folder (a DATA_DIR on several disks).
 */
export async function createGcpDssHost(
  options: {
    fsType?: 'xfs' | 'ext4';
    datasetsDisk?: 'xfs' | 'ext4';
    generate?: Omit<GenerateDataDirOptions, 'dir'>;
  } = {},
): Promise<GcpDssHost> {
  const cloud = await createGcpTestCloud();
  Object.assign(process.env, cloud.env);
  try {
    const dataMount = join(cloud.work, 'data');
    await cloud.createDataDisk({ name: 'dss-data', fsType: options.fsType ?? 'xfs', mountPoint: dataMount });
    const dataDir = join(dataMount, 'dss');
    await generateDataDir({ dir: dataDir, preset: 'tiny', seed: 5, owner: nobody, ...options.generate });
    const mountPoints = [dataMount];
    if (options.datasetsDisk) {
      // Move managed_datasets onto a disk of its own, mounted in place.
      const datasets = join(dataDir, 'managed_datasets');
      const staging = join(cloud.work, 'datasets-staging');
      await cloud.createDataDisk({ name: 'dss-datasets', fsType: options.datasetsDisk, mountPoint: staging });
      await run('cp', ['-a', `${datasets}/.`, staging]);
      await run('sh', ['-c', `find "$1" -mindepth 1 -delete`, 'sh', datasets]);
      await run('umount', [staging]);
      await run('mount', [cloud.simulator.deviceOf('dss-datasets')!, datasets]);
      mountPoints.push(datasets);
    }
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
            provider: 'gcp',
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
      state: async () => ({
        cloud: await cloud.leftovers(),
        mounts: existsSync(mountRoot) ? await mountsBelow(mountRoot) : [],
        journals: leftoverJournals(stateDir).length,
        partials: (await readdir(destination)).filter((name) => name.startsWith('.partial-')),
        dss: await dssStatus(info),
        writable: (await Promise.all(mountPoints.map(writable))).every(Boolean),
        hookErrors: [...cloud.proxy.hookErrors],
        drift: [...cloud.compute.drift, ...cloud.compute.effectErrors],
      }),
      dispose: async () => {
        await stopDss(info).catch(() => undefined);
        if (options.datasetsDisk)
          await run('umount', ['-l', join(dataDir, 'managed_datasets')]).catch(() => undefined);
        await cloud.dispose();
      },
    };
  } catch (error) {
    await cloud.dispose();
    throw error;
  }
}

/** False when writing into `dir` blocks (a frozen filesystem): probed in a child with a timeout. */
async function writable(dir: string): Promise<boolean> {
  const probe = join(dir, '.dssnap-write-probe');
  try {
    await run('timeout', ['5', 'touch', probe]);
    await rm(probe, { force: true });
    return true;
  } catch {
    return false;
  }
}

/** Mount a snapshot image read-only without log recovery (what the snapshot holds), for comparisons. */
export async function withImageMounted<T>(image: string, use: (root: string) => Promise<T>): Promise<T> {
  const mountPoint = await mkdtemp(join(tmpdir(), 'dssnap-gcp-snap-'));
  const loop = (await run('losetup', ['-f', '--show', '-r', image])).stdout.trim();
  try {
    const fsType = (await run('blkid', ['-o', 'value', '-s', 'TYPE', loop])).stdout.trim();
    await run('mount', ['-o', fsType === 'xfs' ? 'ro,nouuid,norecovery' : 'ro,noload', loop, mountPoint]);
    return await use(mountPoint);
  } finally {
    await ensureUnmounted(mountPoint);
    await run('losetup', ['-d', loop]).catch(() => undefined);
    await rm(mountPoint, { recursive: true, force: true });
  }
}
