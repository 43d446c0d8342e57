/**
 * A whole "Azure VM" for tests: the stateful ARM Compute fake behind the fault-injecting proxy (which
 * serves HTTPS with a certificate made now: the SDK sends bearer tokens over https only), a fake IMDS
 * (instance metadata and managed-identity tokens), and the host simulator turning what ARM does into
 * real devices — the VM's data disk is a real XFS or ext4 on a loop device linked as `scsi1/lun<N>`,
 * mounted, holding a generated DATA_DIR; a snapshot copies its image when ARM accepts it; a disk made
 * from a snapshot and attached here appears as a loop device at its LUN. Only ARM's control plane is
 * faked: the SDK, credential chain, HTTPS, devices, mounts, fsfreeze and the copy are real.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BackupOptions, backupOptionsSchema, resolveOptions } from '../../src/config.js';
import { dssStatus, stopDss } from '../../src/dss/control.js';
import { type DataDirInfo, inspectDataDir } from '../../src/dss/layout.js';
import { run } from '../../src/host/exec.js';
import { mountsBelow } from '../../src/host/mounts.js';
import { leftoverJournals } from '../../src/procedure/journal.js';
import { TagKey } from '../../src/provider/types.js';
import { type AzureArmFake, type DiskSkuName, type FakeDisk, startAzureArmFake } from '../fakes/azure-arm.js';
import { type AzureImdsFake, startAzureImdsFake } from '../fakes/azure-imds.js';
import { type FaultProxy, type FaultRule, startFaultProxy } from '../fakes/fault-proxy.js';
import { createHostSimulator, type HostSimulator } from '../fakes/host-simulator.js';
import { type GenerateDataDirOptions, generateDataDir } from '../fixtures/generate-data-dir.js';
import { nobody } from './dss-host.js';
import { createLoopVolume, type LoopVolume } from './loop-volume.js';
import { requireRoot } from './require-root.js';
import { createTestCertificate, type TestCertificate } from './tls.js';

export const testResourceGroup = 'dss-rg';
export const testVmName = 'dss-vm';
export const testZone = '2';

export interface AzureDataDisk {
  diskId: string;
  lun: number;
  device: string;
  mountPoint: string;
}

export interface AzureTestCloud {
  arm: AzureArmFake;
  proxy: FaultProxy;
  imds: AzureImdsFake;
  simulator: HostSimulator;
  certificate: TestCertificate;
  /** A temp dir for the test: state dir, mount root, destination live here. */
  work: string;
  /** Errors of device attaches done in the background (a test should expect none). */
  readonly hookErrors: unknown[];
  /**
   * Milliseconds the simulator spent copying disk images inside snapshot requests so far: part of a
   * measured pause here, but not on Azure, where the storage snapshot does not copy the disk.
   */
  snapshotCopyMs(): number;
  /** The azure provider settings that point it at this cloud. */
  providerSettings(extra?: Record<string, unknown>): Record<string, unknown>;
  /** Environment for a dssnap child process: the managed identity comes from the fake IMDS. */
  cliEnv(): Record<string, string>;
  /** Create a managed disk, attach it to the VM at `lun`, make a filesystem on it, mount it. */
  createDataDisk(options: {
    name: string;
    lun: number;
    fsType: 'xfs' | 'ext4';
    mountPoint: string;
    sizeGb?: number;
    sku?: DiskSkuName;
  }): Promise<AzureDataDisk>;
  /** Inject a fault on ARM requests named `name` (see `armRequestName`), as ARM sends it. */
  fail(
    name: string | RegExp | undefined,
    fault: AzureFault,
    rule?: Omit<FaultRule, 'action' | 'match'>,
  ): void;
  /** What dssnap left: temporary disks, unretained snapshots, devices of disks that are not data disks. */
  leftovers(): Promise<{ disks: string[]; snapshots: string[]; devices: string[] }>;
  /** dssnap snapshots that are retained. */
  retainedSnapshots(): Array<{ id: string; tags: Record<string, string> }>;
  dispose(): Promise<void>;
}

export type AzureFault = 'throttle' | 'server' | 'unavailable' | 'reset' | 'conflict';

/**
 * The proxy's name of an ARM request: `PUT snapshots`, `GET snapshots list`, `POST attachDetachDataDisks`,
 * `GET DiskOperations` (an operation's status), `GET DiskOperations monitor` (its Location URL)…
 */
export function armRequestName(request: { method: string; path: string }): string {
  const [path = '', query = ''] = request.path.split('?');
  const compute = /\/providers\/Microsoft\.Compute\/(.*)$/i.exec(path)?.[1];
  if (!compute) return `${request.method} ${path}`;
  const segments = compute.split('/');
  if (segments[0]?.toLowerCase() === 'locations') {
    return `${request.method} ${segments[2]}${/(^|&)monitor=true/.test(query) ? ' monitor' : ''}`;
  }
  if (segments.length === 1) return `${request.method} ${segments[0]} list`;
  if (segments.length === 2) return `${request.method} ${segments[0]}`;
  return `${request.method} ${segments[2]}`;
}

export async function createAzureTestCloud(): Promise<AzureTestCloud> {
  requireRoot();
  const work = await mkdtemp(join(tmpdir(), 'dssnap-azure-'));
  await chmod(work, 0o755);
  const disposers: Array<() => Promise<unknown>> = [() => rm(work, { recursive: true, force: true })];
  const dispose = async (): Promise<void> => {
    for (const step of disposers.reverse()) await step().catch(() => undefined);
  };
  try {
    const certificate = await createTestCertificate();
    disposers.push(() => certificate.dispose());
    // Images live on XFS (reflink): a snapshot of a disk is an instant copy.
    const pool: LoopVolume = await createLoopVolume({ fsType: 'xfs', sizeMb: 4096 });
    disposers.push(() => pool.dispose());
    const simulator = await createHostSimulator({
      imageDir: join(pool.mountPoint, 'images'),
      deviceDir: join(work, 'dev', 'disk', 'azure', 'scsi1'),
    });
    disposers.push(() => simulator.dispose());
    const hookErrors: unknown[] = [];
    let copyMs = 0;
    const id = (resourceId: string): string => resourceId.toLowerCase();
    const arm = await startAzureArmFake({
      subscription: '5f1c9a3e-0000-4000-8000-00000000d55a',
      location: 'westeurope',
      operationPolls: 2,
      completionPolls: 2,
      hooks: {
        snapshotCreated: async (snapshot, source) => {
          const started = performance.now();
          if (simulator.hasDisk(id(source.id))) await simulator.snapshotDisk(id(source.id), id(snapshot.id));
          copyMs += performance.now() - started;
        },
        diskCreated: async (disk, source) => {
          if (simulator.snapshots().includes(id(source.id))) {
            await simulator.createDiskFromSnapshot(id(disk.id), id(source.id));
          }
        },
        diskAttached: async (_vm, disk, lun) => {
          if (!simulator.hasDisk(id(disk.id))) return;
          // The device shows up a moment after ARM reports the attach, as on a real VM.
          simulator.attach(id(disk.id), [`lun${lun}`], { delayMs: 150 }).catch((error: unknown) => {
            hookErrors.push(error);
          });
        },
        diskDetached: async (_vm, disk) => {
          await simulator.detach(id(disk.id));
        },
        diskDeleted: async (disk) => {
          if (simulator.hasDisk(id(disk.id))) await simulator.deleteDisk(id(disk.id));
        },
        snapshotDeleted: async (snapshot) => {
          await simulator.deleteSnapshot(id(snapshot.id));
        },
      },
    });
    disposers.push(() => arm.close());
    arm.addVm({
      resourceGroup: testResourceGroup,
      name: testVmName,
      zone: testZone,
      vmSize: 'Standard_D4s_v5',
    });
    const imds = await startAzureImdsFake(arm, testVmName);
    disposers.push(() => imds.close());
    const proxy = await startFaultProxy({
      target: arm.url,
      classify: armRequestName,
      tls: { cert: certificate.cert, key: certificate.key },
    });
    disposers.push(() => proxy.close());
    const mounted: string[] = [];
    disposers.push(async () => {
      for (const mountPoint of mounted.reverse())
        await run('umount', ['-l', mountPoint]).catch(() => undefined);
    });
    const dataDisks = new Set<string>();
    // In this process, the default credential chain's managed identity asks the fake IMDS.
    process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST = imds.url;

    const cloud: AzureTestCloud = {
      arm,
      proxy,
      imds,
      simulator,
      certificate,
      work,
      hookErrors,
      snapshotCopyMs: () => copyMs,
      providerSettings: (extra = {}) => ({
        endpoint: proxy.url,
        imdsEndpoint: imds.url,
        deviceDir: simulator.deviceDir,
        caFile: certificate.caFile,
        pollIntervalMs: 20,
        requestRetries: 2,
        requestRetryDelayMs: 50,
        deviceTimeoutMs: 20_000,
        ...extra,
      }),
      cliEnv: () => ({ AZURE_POD_IDENTITY_AUTHORITY_HOST: imds.url }),
      async createDataDisk({ name, lun, fsType, mountPoint, sizeGb = 1, sku = 'Premium_LRS' }) {
        const disk: FakeDisk = arm.addDisk({
          resourceGroup: testResourceGroup,
          name,
          sizeGb,
          sku,
          zone: testZone,
        });
        await simulator.createDisk(id(disk.id), sizeGb * 1024 ** 3);
        await arm.attach(testVmName, disk.id, lun);
        await simulator.settled();
        const device = simulator.deviceOf(id(disk.id))!;
        await run(`mkfs.${fsType}`, fsType === 'xfs' ? ['-q', '-f', device] : ['-q', '-F', device], {
          timeoutMs: 60_000,
        });
        await mkdir(mountPoint, { recursive: true });
        await run('mount', [device, mountPoint]);
        mounted.push(mountPoint);
        await chmod(mountPoint, 0o755);
        dataDisks.add(id(disk.id));
        return { diskId: disk.id, lun, device, mountPoint };
      },
      fail(name, fault, rule = {}) {
        proxy.inject({
          ...rule,
          ...(name === undefined ? {} : { match: { name } }),
          action: faultAction(fault),
        });
      },
      async leftovers() {
        await simulator.settled();
        return {
          disks: arm
            .disks()
            .filter((disk) => disk.tags[TagKey.role] === 'exposure')
            .map((disk) => disk.name)
            .sort(),
          snapshots: arm
            .snapshots()
            .filter((snapshot) => snapshot.tags[TagKey.runId] && snapshot.tags[TagKey.retain] !== 'true')
            .map((snapshot) => snapshot.name)
            .sort(),
          devices: simulator.attached().filter((disk) => !dataDisks.has(disk)),
        };
      },
      retainedSnapshots: () =>
        arm
          .snapshots()
          .filter((snapshot) => snapshot.tags[TagKey.retain] === 'true')
          .map((snapshot) => ({ id: snapshot.id, tags: snapshot.tags })),
      dispose,
    };
    return cloud;
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** The HTTP answer or network failure for each kind of fault, in ARM's error shape. */
export function faultAction(fault: AzureFault): FaultRule['action'] {
  const json = { 'content-type': 'application/json; charset=utf-8' };
  switch (fault) {
    case 'throttle':
      return {
        kind: 'respond',
        status: 429,
        headers: { ...json, 'retry-after': '1' },
        body: armError(
          'TooManyRequests',
          "The request is being throttled as the limit has been reached for operation type - 'Read'.",
        ),
      };
    case 'server':
      return {
        kind: 'respond',
        status: 500,
        headers: json,
        body: armError(
          'InternalServerError',
          'Encountered internal server error. Diagnostic information: fault-proxy.',
        ),
      };
    case 'unavailable':
      return {
        kind: 'respond',
        status: 503,
        headers: { ...json, 'retry-after': '0' },
        body: armError('ServiceUnavailable', 'The service is temporarily unavailable.'),
      };
    case 'conflict':
      return {
        kind: 'respond',
        status: 409,
        headers: json,
        body: armError(
          'OperationNotAllowed',
          'Operation is not allowed since the VM is marked for an operation in progress: another operation is running on it.',
        ),
      };
    case 'reset':
      return { kind: 'reset' };
  }
}

/** False when a write into `dir` does not return within 5 s (a filesystem left frozen). */
async function isWritable(dir: string): Promise<boolean> {
  const probe = join(dir, '.dssnap-write-probe');
  try {
    await run('timeout', ['5', 'touch', probe]);
    await rm(probe, { force: true });
    return true;
  } catch {
    return false;
  }
}

function armError(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

export interface AzureDssHost {
  cloud: AzureTestCloud;
  disk: AzureDataDisk;
  dataDir: string;
  info: DataDirInfo;
  destination: string;
  stateDir: string;
  mountRoot: string;
  /** Backup options for this host with the azure provider, `overrides` applied as flags. */
  options(overrides?: Record<string, unknown>, settings?: Record<string, unknown>): BackupOptions;
  /** A config file (JSON) with these provider options, for the CLI. */
  configFile(settings?: Record<string, unknown>): Promise<string>;
  dssState(): Promise<'running' | 'stopped'>;
  /** What a run may have left: compare with `cleanAzureHostState`. */
  state(): Promise<AzureHostState>;
  dispose(): Promise<void>;
}

export interface AzureHostState {
  cloud: { disks: string[]; snapshots: string[]; devices: string[] };
  /** Mounts below the mount root. */
  mounts: string[];
  /** Journals of runs not finished or not recovered. */
  journals: number;
  /** Partial copies in the destination. */
  partials: string[];
  dss: 'running' | 'stopped';
  /** False when DATA_DIR's filesystem is left frozen. */
  writable: boolean;
  hookErrors: unknown[];
}

/** Nothing left anywhere, DSS running, DATA_DIR writable. */
export const cleanAzureHostState: AzureHostState = {
  cloud: { disks: [], snapshots: [], devices: [] },
  mounts: [],
  journals: 0,
  partials: [],
  dss: 'running',
  writable: true,
  hookErrors: [],
};

/**
 * A DSS host on an Azure VM: a data disk (XFS by default) at LUN 0 mounted at `<work>/data`, DATA_DIR
 * generated in `<work>/data/dss` (a directory inside the disk's filesystem), owned by nobody.
 */
export async function createAzureDssHost(
  options: { fsType?: 'xfs' | 'ext4'; generate?: Omit<GenerateDataDirOptions, 'dir'> } = {},
): Promise<AzureDssHost> {
  const cloud = await createAzureTestCloud();
  try {
    const disk = await cloud.createDataDisk({
      name: 'dss-data-0',
      lun: 0,
      fsType: options.fsType ?? 'xfs',
      mountPoint: join(cloud.work, 'data'),
    });
    const dataDir = join(disk.mountPoint, 'dss');
    await generateDataDir({ dir: dataDir, preset: 'tiny', seed: 6, owner: nobody, ...options.generate });
    const info = await inspectDataDir(dataDir);
    const destination = join(cloud.work, 'backups');
    const stateDir = join(cloud.work, 'state');
    const mountRoot = join(cloud.work, 'mnt');
    await mkdir(destination);
    return {
      cloud,
      disk,
      dataDir: info.path,
      info,
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
            provider: 'azure',
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
      dssState: () => dssStatus(info),
      state: async () => ({
        cloud: await cloud.leftovers(),
        mounts: existsSync(mountRoot) ? await mountsBelow(mountRoot) : [],
        journals: leftoverJournals(stateDir).length,
        partials: (await readdir(destination)).filter((name) => name.startsWith('.partial-')),
        dss: await dssStatus(info),
        writable: await isWritable(dataDir),
        hookErrors: [...cloud.proxy.hookErrors, ...cloud.hookErrors],
      }),
      dispose: async () => {
        await stopDss(info).catch(() => undefined);
        await cloud.dispose();
      },
    };
  } catch (error) {
    await cloud.dispose();
    throw error;
  }
}
