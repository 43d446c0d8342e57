/**
 * A whole "Azure VM" for tests: the stateful ARM Compute fake behind the fault-injecting proxy (which
 * serves HTTPS with a certificate made now: the SDK sends bearer tokens over https only), a fake IMDS
 * (instance metadata and managed-identity tokens), and the host simulator turning what ARM does into
 * real devices — the VM's data disk is a real XFS or ext4 on a loop device linked as `scsi1/lun<N>`,
 * mounted, holding a generated DATA_DIR; a snapshot copies its image when ARM accepts it; a disk made
 * from a snapshot and attached here appears as a loop device at its LUN. Only ARM's control plane is
 * faked: the SDK, credential chain, HTTPS, devices, mounts, fsfreeze and the copy are real.
 */
import { join } from 'node:path';
import { TagKey } from '../../src/provider/types.js';
import { type AzureArmFake, type DiskSkuName, type FakeDisk, startAzureArmFake } from '../fakes/azure-arm.js';
import { type AzureImdsFake, startAzureImdsFake } from '../fakes/azure-imds.js';
import { type FaultProxy, type FaultRule, startFaultProxy } from '../fakes/fault-proxy.js';
import type { HostSimulator } from '../fakes/host-simulator.js';
import type { GenerateDataDirOptions } from '../fixtures/generate-data-dir.js';
import * as harness from './cloud-harness.js';
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

/** What dssnap left: temporary disks, unretained snapshots, devices of disks that are not data disks. */
export interface AzureLeftovers {
  disks: string[];
  snapshots: string[];
  devices: string[];
}

export interface AzureTestCloud extends harness.HarnessCloud<AzureLeftovers> {
  arm: AzureArmFake;
  proxy: FaultProxy;
  imds: AzureImdsFake;
  simulator: HostSimulator;
  certificate: TestCertificate;
  /** Errors of device attaches done in the background (a test should expect none). */
  readonly hookErrors: unknown[];
  /**
   * Milliseconds the simulator spent copying disk images inside snapshot requests so far: part of a
   * measured pause here, but not on Azure, where the storage snapshot does not copy the disk.
   */
  snapshotCopyMs(): number;
  /** Environment for a dssnap child process: the managed identity comes from the fake IMDS. */
  cliEnv(): Record<string, string>;
  /** Create a managed disk, attach it to the VM at `lun`, make a filesystem on it, mount it. */
  createDataDisk(options: {
    name: string;
    lun: number;
    fsType: harness.FsType;
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
  /** dssnap snapshots that are retained. */
  retainedSnapshots(): Array<{ id: string; tags: Record<string, string> }>;
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
  return harness.createCloud(
    { name: 'azure', poolMb: 4096, deviceDir: 'dev/disk/azure/scsi1' },
    async (base) => {
      const { simulator, hookErrors } = base;
      const certificate = await createTestCertificate();
      base.defer(() => certificate.dispose());
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
            if (simulator.hasDisk(id(source.id)))
              await simulator.snapshotDisk(id(source.id), id(snapshot.id));
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
      base.defer(() => arm.close());
      arm.addVm({
        resourceGroup: testResourceGroup,
        name: testVmName,
        zone: testZone,
        vmSize: 'Standard_D4s_v5',
      });
      const imds = await startAzureImdsFake(arm, testVmName);
      base.defer(() => imds.close());
      const proxy = await startFaultProxy({
        target: arm.url,
        classify: armRequestName,
        tls: { cert: certificate.cert, key: certificate.key },
      });
      base.defer(() => proxy.close());
      const dataDisks = new Set<string>();
      // In this process, the default credential chain's managed identity asks the fake IMDS.
      process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST = imds.url;

      const cloud: AzureTestCloud = {
        arm,
        proxy,
        imds,
        simulator,
        certificate,
        work: base.work,
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
          await base.formatAndMount(device, fsType, mountPoint);
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
        backgroundErrors: () => [...proxy.hookErrors, ...hookErrors],
        retainedSnapshots: () =>
          arm
            .snapshots()
            .filter((snapshot) => snapshot.tags[TagKey.retain] === 'true')
            .map((snapshot) => ({ id: snapshot.id, tags: snapshot.tags })),
        dispose: base.dispose,
      };
      return cloud;
    },
  );
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

function armError(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

export interface AzureDssHost extends harness.CloudDssHost<AzureTestCloud> {
  disk: AzureDataDisk;
}

export type AzureHostState = harness.HostState<AzureLeftovers>;

/** Nothing left anywhere, DSS running, DATA_DIR writable. */
export const cleanAzureHostState: AzureHostState = harness.cleanState({
  disks: [],
  snapshots: [],
  devices: [],
});

/**
 * A DSS host on an Azure VM: a data disk (XFS by default) at LUN 0 mounted at `<work>/data`, DATA_DIR
 * generated in `<work>/data/dss` (a directory inside the disk's filesystem), owned by nobody.
 */
export async function createAzureDssHost(
  options: { fsType?: harness.FsType; generate?: Omit<GenerateDataDirOptions, 'dir'> } = {},
): Promise<AzureDssHost> {
  return harness.disposeOnFailure(await createAzureTestCloud(), async (cloud) => {
    const disk = await cloud.createDataDisk({
      name: 'dss-data-0',
      lun: 0,
      fsType: options.fsType ?? 'xfs',
      mountPoint: join(cloud.work, 'data'),
    });
    const host = await harness.createCloudDssHost(cloud, {
      provider: 'azure',
      dataMount: disk.mountPoint,
      seed: 6,
      ...(options.generate ? { generate: options.generate } : {}),
    });
    return { ...host, disk };
  });
}
