/**
 * A whole "Compute Engine VM" for tests: the stateful Compute fake behind the fault-injecting proxy, a
 * fake metadata server handing out the service account's token (Application Default Credentials find
 * it through GCE_METADATA_HOST, as on a VM), and the host simulator turning what the fake does into real
 * devices — the VM's data disk is a real XFS or ext4 on a loop device, mounted, holding a generated
 * DATA_DIR; a snapshot copies its image; a disk made from a snapshot and attached here appears as a loop
 * device with the `google-<device name>` link the provider waits for. Only Google's control plane is
 * faked: the SDK, HTTP, credentials, devices, mounts, fsfreeze and the copy are real.
 */
import { join } from 'node:path';
import { run } from '../../src/host/exec.js';
import { type FaultProxy, type FaultRule, startFaultProxy } from '../fakes/fault-proxy.js';
import { type GcpComputeFake, googleErrorBody, startGcpComputeFake } from '../fakes/gcp-compute.js';
import { type GcpMetadataFake, startGcpMetadataFake } from '../fakes/gcp-metadata.js';
import { matchRoute } from '../fakes/gcp-proto.js';
import type { HostSimulator } from '../fakes/host-simulator.js';
import type { GenerateDataDirOptions } from '../fixtures/generate-data-dir.js';
import * as harness from './cloud-harness.js';

export const gcpProject = 'dss-prod-4711';
export const gcpZone = 'europe-west1-b';
export const gcpInstance = 'dss-design-1';

export type GcpFault = 'throttle' | 'rate-403' | 'unavailable' | 'reset';

/** What dssnap left: temporary disks, unretained snapshots, devices of temporary disks. */
export interface GcpLeftovers {
  disks: string[];
  snapshots: string[];
  devices: string[];
}

export interface GcpTestCloud extends harness.HarnessCloud<GcpLeftovers> {
  compute: GcpComputeFake;
  metadata: GcpMetadataFake;
  proxy: FaultProxy;
  simulator: HostSimulator;
  /** Environment for the provider's process (ADC through the fake metadata server). */
  env: Readonly<Record<string, string>>;
  /** A persistent disk attached here as `google-<name>`, with a filesystem, mounted at `mountPoint`. */
  createDataDisk(options: {
    name: string;
    fsType: harness.FsType;
    mountPoint: string;
    sizeGb?: number;
  }): Promise<string>;
  /** Fail Compute calls of `method` (`Disks.CreateSnapshot`, a RegExp, or all) with Google's own answers. */
  fail(
    method: string | RegExp | undefined,
    fault: GcpFault,
    rule?: Omit<FaultRule, 'action' | 'match'>,
  ): void;
}

/** Start the fakes, the proxy and the host simulator; ADC is pointed at the metadata fake. */
export async function createGcpTestCloud(): Promise<GcpTestCloud> {
  return harness.createCloud({ name: 'gcp', poolMb: 4096, deviceDir: 'dev/disk/by-id' }, async (base) => {
    const { simulator } = base;
    const metadata = await startGcpMetadataFake({
      project: gcpProject,
      zone: gcpZone,
      instance: gcpInstance,
    });
    base.defer(() => metadata.close());
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
            .catch((error: unknown) => base.hookErrors.push(error));
        },
        detach: (disk) => simulator.detach(disk),
        deleteDisk: (disk) => simulator.deleteDisk(disk),
        deleteSnapshot: (snapshot) => simulator.deleteSnapshot(snapshot),
      },
    });
    base.defer(() => compute.close());
    compute.addInstance(gcpInstance);
    const proxy = await startFaultProxy({
      target: compute.url,
      classify: (request) =>
        matchRoute(request.method, request.path.split('?')[0]!)?.route.id ??
        `${request.method} ${request.path.split('?')[0]}`,
    });
    base.defer(() => proxy.close());
    const dataDisks = new Set<string>();
    const env = {
      GCE_METADATA_HOST: metadata.host,
      // No user or key-file credentials may shadow the VM's service account in tests.
      GOOGLE_APPLICATION_CREDENTIALS: '',
      HOME: base.work,
    };

    const cloud: GcpTestCloud = {
      compute,
      metadata,
      proxy,
      simulator,
      work: base.work,
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
        await base.formatAndMount(loop, fsType, mountPoint);
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
      backgroundErrors: () => [...proxy.hookErrors, ...base.hookErrors],
      dispose: base.dispose,
    };
    return cloud;
  });
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

export type GcpHostState = harness.HostState<GcpLeftovers> & {
  /** Responses of the Compute fake outside Google's API description, and effects it failed to carry out. */
  drift: string[];
};

/** Nothing left anywhere, DSS running, DATA_DIR writable, the fake true to the API. */
export const cleanGcpHostState: GcpHostState = harness.cleanState(
  { disks: [], snapshots: [], devices: [] },
  { drift: [] as string[] },
);

export type GcpDssHost = harness.CloudDssHost<GcpTestCloud, { drift: string[] }>;

/**
 * A DSS host on Compute Engine: the disk `dss-data` (XFS by default) mounted at `<work>/data`, DATA_DIR
 * generated in `<work>/data/dss`, owned by nobody; with `datasetsDisk`, a second disk `dss-datasets`
 * mounted at DATA_DIR/managed_datasets holding that folder (a DATA_DIR on several disks).
 */
export async function createGcpDssHost(
  options: {
    fsType?: harness.FsType;
    datasetsDisk?: harness.FsType;
    generate?: Omit<GenerateDataDirOptions, 'dir'>;
  } = {},
): Promise<GcpDssHost> {
  return harness.disposeOnFailure(await createGcpTestCloud(), async (cloud) => {
    Object.assign(process.env, cloud.env);
    const dataMount = join(cloud.work, 'data');
    await cloud.createDataDisk({ name: 'dss-data', fsType: options.fsType ?? 'xfs', mountPoint: dataMount });
    const datasetsDisk = options.datasetsDisk;
    return harness.createCloudDssHost(cloud, {
      provider: 'gcp',
      dataMount,
      seed: 5,
      ...(options.generate ? { generate: options.generate } : {}),
      moreMounts: async (dataDir) => {
        if (!datasetsDisk) return [];
        // Move managed_datasets onto a disk of its own, mounted in place.
        const datasets = join(dataDir, 'managed_datasets');
        const staging = join(cloud.work, 'datasets-staging');
        await cloud.createDataDisk({ name: 'dss-datasets', fsType: datasetsDisk, mountPoint: staging });
        await run('cp', ['-a', `${datasets}/.`, staging]);
        await run('sh', ['-c', `find "$1" -mindepth 1 -delete`, 'sh', datasets]);
        await run('umount', [staging]);
        await run('mount', [cloud.simulator.deviceOf('dss-datasets')!, datasets]);
        return [datasets];
      },
      extraState: () => ({ drift: [...cloud.compute.drift, ...cloud.compute.effectErrors] }),
      beforeDispose: async () => {
        if (datasetsDisk) await run('umount', ['-l', join(cloud.work, 'data', 'dss', 'managed_datasets')]);
      },
    });
  });
}
