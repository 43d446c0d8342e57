/**
 * A whole "EC2 instance" for tests: moto's EC2 emulator behind the fault-injecting proxy, a fake IMDSv2,
 * and the host simulator turning what moto reports into real devices — the instance's data volume is a
 * real XFS or ext4 on a loop device, mounted, holding a generated DATA_DIR; a snapshot copies its image;
 * a volume made from a snapshot and attached here appears as a loop device with the
 * `nvme-Amazon_Elastic_Block_Store_vol…` link the provider waits for. Only EC2's control plane is
 * emulated: the SDK, HTTP, devices, mounts, fsfreeze and the copy are real.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AttachVolumeCommand,
  CreateVolumeCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  EC2Client,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { nvmeLinkName } from '../../providers/aws/devices.js';
import { fromAwsTags } from '../../providers/aws/index.js';
import { type BackupOptions, backupOptionsSchema, resolveOptions } from '../../src/config.js';
import { dssStatus, stopDss } from '../../src/dss/control.js';
import { type DataDirInfo, inspectDataDir } from '../../src/dss/layout.js';
import { run } from '../../src/host/exec.js';
import { mountsBelow } from '../../src/host/mounts.js';
import { leftoverJournals } from '../../src/procedure/journal.js';
import { TagKey } from '../../src/provider/types.js';
import { type FaultProxy, type FaultRule, formField, startFaultProxy } from '../fakes/fault-proxy.js';
import { createHostSimulator, type HostSimulator } from '../fakes/host-simulator.js';
import { type FakeImds, startFakeImds } from '../fakes/imds-aws.js';
import { type GenerateDataDirOptions, generateDataDir } from '../fixtures/generate-data-dir.js';
import { nobody } from './dss-host.js';
import { createLoopVolume, type LoopVolume } from './loop-volume.js';
import { type Moto, startMoto } from './moto.js';
import { requireRoot } from './require-root.js';

export const testRegion = 'us-east-1';
export const testZone = 'us-east-1a';

/** Static fake credentials and quiet SDK: the environment a test process and its CLI children use. */
export const awsTestEnv: Readonly<Record<string, string>> = {
  AWS_ACCESS_KEY_ID: 'AKIDTESTTESTTESTTEST',
  AWS_SECRET_ACCESS_KEY: 'test-secret-never-logged',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

export interface DataVolume {
  volumeId: string;
  device: string;
  mountPoint: string;
}

export interface AwsTestCloud {
  moto: Moto;
  proxy: FaultProxy;
  imds: FakeImds;
  simulator: HostSimulator;
  instanceId: string;
  /** A client straight to moto (not through the proxy: never faulted, never counted). */
  ec2: EC2Client;
  /** A temp dir for the test: state dir, mount root, destination live here. */
  work: string;
  /** The aws provider settings that point it at this cloud. */
  providerSettings(extra?: Record<string, unknown>): Record<string, unknown>;
  /** Create an EBS volume, attach it here, make a filesystem on it and mount it at `mountPoint`. */
  createDataVolume(options: {
    fsType: 'xfs' | 'ext4';
    mountPoint: string;
    device: string;
    sizeGiB?: number;
  }): Promise<DataVolume>;
  /** Create and attach a volume without using it (a volume a multi-volume set must exclude). */
  attachBlankVolume(device: string): Promise<string>;
  /** Inject an EC2 fault by action name (`CreateSnapshot`…): AWS's own XML error bodies. */
  fail(
    action: string | RegExp | undefined,
    fault: AwsFault,
    rule?: Omit<FaultRule, 'action' | 'match'>,
  ): void;
  /** What dssnap left in moto and on the host: temporary volumes, unretained snapshots, extra devices. */
  leftovers(): Promise<{ volumes: string[]; snapshots: string[]; devices: string[] }>;
  /** dssnap snapshots in moto that are retained. */
  retainedSnapshots(): Promise<Array<{ id: string; tags: Record<string, string> }>>;
  dispose(): Promise<void>;
}

export type AwsFault = 'throttle' | 'rate' | 'server' | 'denied' | 'timeout' | 'reset' | 'incorrect-state';

export async function createAwsTestCloud(): Promise<AwsTestCloud> {
  requireRoot();
  Object.assign(process.env, awsTestEnv);
  const work = await mkdtemp(join(tmpdir(), 'dssnap-aws-'));
  await chmod(work, 0o755);
  const disposers: Array<() => Promise<unknown>> = [() => rm(work, { recursive: true, force: true })];
  const dispose = async (): Promise<void> => {
    for (const step of disposers.reverse()) await step().catch(() => undefined);
  };
  try {
    // Images live on XFS (reflink): a snapshot of a volume is an instant copy, as in EBS.
    const pool: LoopVolume = await createLoopVolume({ fsType: 'xfs', sizeMb: 6144 });
    disposers.push(() => pool.dispose());
    const moto = await startMoto();
    disposers.push(() => moto.stop());
    const ec2 = new EC2Client({
      region: testRegion,
      endpoint: moto.endpoint,
      credentials: {
        accessKeyId: awsTestEnv.AWS_ACCESS_KEY_ID!,
        secretAccessKey: awsTestEnv.AWS_SECRET_ACCESS_KEY!,
      },
    });
    const image = (await ec2.send(new DescribeImagesCommand({ MaxResults: 5 }))).Images?.[0]?.ImageId;
    const instanceId = (
      await ec2.send(
        new RunInstancesCommand({
          ImageId: image!,
          MinCount: 1,
          MaxCount: 1,
          InstanceType: 'm6i.large',
          Placement: { AvailabilityZone: testZone },
        }),
      )
    ).Instances![0]!.InstanceId!;
    const imds = await startFakeImds({ instanceId, availabilityZone: testZone, region: testRegion });
    disposers.push(() => imds.close());
    const proxy = await startFaultProxy({ target: moto.endpoint, classify: formField('Action') });
    disposers.push(() => proxy.close());
    const simulator = await createHostSimulator({
      imageDir: join(pool.mountPoint, 'images'),
      deviceDir: join(work, 'dev', 'disk', 'by-id'),
    });
    disposers.push(() => simulator.dispose());
    const mounted: string[] = [];
    disposers.push(async () => {
      for (const mountPoint of mounted.reverse())
        await run('umount', ['-l', mountPoint]).catch(() => undefined);
    });
    const dataVolumes = new Set<string>();

    proxy.onExchange(async ({ request, status, body }) => {
      if (status !== 200) return;
      const params = new URLSearchParams(request.body);
      switch (request.name) {
        case 'CreateSnapshot':
        case 'CreateSnapshots': {
          // Inside dssnap's freeze window: no extra round trip to moto, just the ids from the answer.
          for (const { snapshotId, volumeId } of snapshotsIn(body)) {
            if (simulator.hasDisk(volumeId)) await simulator.snapshotDisk(volumeId, snapshotId);
          }
          return;
        }
        case 'CreateVolume': {
          const volumeId = /<volumeId>(vol-[0-9a-f]+)<\/volumeId>/.exec(body)?.[1];
          if (!volumeId) return;
          const snapshotId = params.get('SnapshotId');
          if (snapshotId) {
            if (simulator.snapshots().includes(snapshotId))
              await simulator.createDiskFromSnapshot(volumeId, snapshotId);
          } else {
            await simulator.createDisk(volumeId, Number(params.get('Size') ?? '1') * 1024 ** 3);
          }
          return;
        }
        case 'AttachVolume': {
          const volumeId = params.get('VolumeId')!;
          if (params.get('InstanceId') !== instanceId || !simulator.hasDisk(volumeId)) return;
          // The device shows up a moment after EC2 answers, as on a real instance.
          simulator.attach(volumeId, [nvmeLinkName(volumeId)], { delayMs: 150 }).catch((error: unknown) => {
            (proxy.hookErrors as unknown[]).push(error);
          });
          return;
        }
        case 'DetachVolume':
          await simulator.detach(params.get('VolumeId')!);
          return;
        case 'DeleteVolume':
          await simulator.deleteDisk(params.get('VolumeId')!);
          return;
        case 'DeleteSnapshot':
          await simulator.deleteSnapshot(params.get('SnapshotId')!);
          return;
      }
    });

    async function createAndAttach(device: string, sizeGiB: number): Promise<string> {
      const volumeId = (
        await ec2.send(
          new CreateVolumeCommand({ AvailabilityZone: testZone, Size: sizeGiB, VolumeType: 'gp3' }),
        )
      ).VolumeId!;
      await ec2.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: device }));
      await simulator.createDisk(volumeId, sizeGiB * 1024 ** 3);
      await simulator.attach(volumeId, [nvmeLinkName(volumeId)]);
      dataVolumes.add(volumeId);
      return volumeId;
    }

    const cloud: AwsTestCloud = {
      moto,
      proxy,
      imds,
      simulator,
      instanceId,
      ec2,
      work,
      providerSettings: (extra = {}) => ({
        endpoint: proxy.url,
        imdsEndpoint: imds.url,
        deviceDir: simulator.deviceDir,
        maxAttempts: 3,
        requestTimeout: '2s',
        pollInterval: '50ms',
        volumeTimeout: '30s',
        ...extra,
      }),
      async createDataVolume({ fsType, mountPoint, device, sizeGiB = 1 }) {
        const volumeId = await createAndAttach(device, sizeGiB);
        const loop = simulator.deviceOf(volumeId)!;
        await run(`mkfs.${fsType}`, fsType === 'xfs' ? ['-q', '-f', loop] : ['-q', '-F', loop], {
          timeoutMs: 60_000,
        });
        await mkdir(mountPoint, { recursive: true });
        await run('mount', [loop, mountPoint]);
        mounted.push(mountPoint);
        await chmod(mountPoint, 0o755);
        return { volumeId, device: loop, mountPoint };
      },
      attachBlankVolume: (device) => createAndAttach(device, 1),
      fail(action, fault, rule = {}) {
        proxy.inject({
          ...rule,
          ...(action === undefined ? {} : { match: { name: action } }),
          action: faultAction(fault),
        });
      },
      async leftovers() {
        await simulator.settled();
        const volumes =
          (
            await ec2.send(
              new DescribeVolumesCommand({ Filters: [{ Name: `tag:${TagKey.role}`, Values: ['exposure'] }] }),
            )
          ).Volumes ?? [];
        const snapshots =
          (
            await ec2.send(
              new DescribeSnapshotsCommand({
                OwnerIds: ['self'],
                Filters: [{ Name: 'tag-key', Values: [TagKey.runId] }],
              }),
            )
          ).Snapshots ?? [];
        return {
          volumes: volumes.map((v) => v.VolumeId!).sort(),
          snapshots: snapshots
            .filter((s) => fromAwsTags(s.Tags)[TagKey.retain] !== 'true')
            .map((s) => s.SnapshotId!)
            .sort(),
          devices: simulator.attached().filter((id) => !dataVolumes.has(id)),
        };
      },
      async retainedSnapshots() {
        const snapshots =
          (
            await ec2.send(
              new DescribeSnapshotsCommand({
                OwnerIds: ['self'],
                Filters: [{ Name: `tag:${TagKey.retain}`, Values: ['true'] }],
              }),
            )
          ).Snapshots ?? [];
        return snapshots.map((s) => ({ id: s.SnapshotId!, tags: fromAwsTags(s.Tags) }));
      },
      dispose,
    };
    return cloud;
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** (snapshot, volume) pairs in a CreateSnapshot answer or in each top-level item of a CreateSnapshots one. */
function snapshotsIn(body: string): Array<{ snapshotId: string; volumeId: string }> {
  const pairs: Array<{ snapshotId: string; volumeId: string }> = [];
  let depth = 0;
  let current: { snapshotId?: string; volumeId?: string } = {};
  const flush = (): void => {
    if (current.snapshotId && current.volumeId)
      pairs.push({ snapshotId: current.snapshotId, volumeId: current.volumeId });
    current = {};
  };
  for (const match of body.matchAll(/<(\/?)item>|<(snapshotId|volumeId)>([a-z]+-[0-9a-f]+)<\/\2>/g)) {
    if (match[2] === undefined) {
      depth += match[1] ? -1 : 1;
      if (match[1] && depth === 0) flush();
    } else if (depth <= 1) {
      current[match[2] as 'snapshotId' | 'volumeId'] = match[3]!;
    }
  }
  flush();
  return pairs;
}

/** The HTTP answer or network failure for each kind of fault, as EC2 sends them. */
export function faultAction(fault: AwsFault): FaultRule['action'] {
  switch (fault) {
    case 'throttle':
      return {
        kind: 'respond',
        status: 503,
        body: ec2Error('RequestLimitExceeded', 'Request limit exceeded.'),
      };
    case 'rate':
      return {
        kind: 'respond',
        status: 400,
        body: ec2Error(
          'SnapshotCreationPerVolumeRateExceeded',
          'The maximum per volume CreateSnapshot request rate has been exceeded.',
        ),
      };
    case 'server':
      return {
        kind: 'respond',
        status: 500,
        body: ec2Error('InternalError', 'An internal error has occurred.'),
      };
    case 'denied':
      return {
        kind: 'respond',
        status: 403,
        body: ec2Error(
          'UnauthorizedOperation',
          'You are not authorized to perform this operation. Encoded authorization failure message: AbCdEf0123456789',
        ),
      };
    case 'incorrect-state':
      return {
        kind: 'respond',
        status: 400,
        body: ec2Error('IncorrectState', "Volume is in the 'busy' state."),
      };
    case 'timeout':
      return { kind: 'delay', ms: 2_500 };
    case 'reset':
      return { kind: 'reset' };
  }
}

/** False when writing into `dir` blocks (a frozen filesystem): probed in a child with a timeout. */
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

function ec2Error(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>00000000-fault-proxy</RequestID></Response>`;
}

export interface HostState {
  cloud: { volumes: string[]; snapshots: string[]; devices: string[] };
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
export const cleanHostState: HostState = {
  cloud: { volumes: [], snapshots: [], devices: [] },
  mounts: [],
  journals: 0,
  partials: [],
  dss: 'running',
  writable: true,
  hookErrors: [],
};

export interface AwsDssHost {
  cloud: AwsTestCloud;
  volume: DataVolume;
  dataDir: string;
  info: DataDirInfo;
  destination: string;
  stateDir: string;
  mountRoot: string;
  /** Backup options for this host with the aws provider, `overrides` applied as flags. */
  options(overrides?: Record<string, unknown>, settings?: Record<string, unknown>): BackupOptions;
  /** A config file (JSON) with these provider options, for the CLI. */
  configFile(settings?: Record<string, unknown>): Promise<string>;
  /** What a run may have left: compare with `cleanHostState`. */
  state(): Promise<HostState>;
  dispose(): Promise<void>;
}

/**
 * A DSS host on EC2: a data volume (XFS by default) mounted at `<work>/data`, DATA_DIR generated in
 * `<work>/data/dss` (so it is a directory inside the volume), owned by nobody.
 */
export async function createAwsDssHost(
  options: { fsType?: 'xfs' | 'ext4'; sizeGiB?: number; generate?: Omit<GenerateDataDirOptions, 'dir'> } = {},
): Promise<AwsDssHost> {
  const cloud = await createAwsTestCloud();
  try {
    const volume = await cloud.createDataVolume({
      fsType: options.fsType ?? 'xfs',
      mountPoint: join(cloud.work, 'data'),
      device: '/dev/sdf',
      sizeGiB: options.sizeGiB ?? 1,
    });
    const dataDir = join(volume.mountPoint, 'dss');
    const mountRoot = join(cloud.work, 'mnt');
    await generateDataDir({ dir: dataDir, preset: 'tiny', seed: 4, owner: nobody, ...options.generate });
    const info = await inspectDataDir(dataDir);
    const destination = join(cloud.work, 'backups');
    const stateDir = join(cloud.work, 'state');
    await mkdir(destination);
    return {
      cloud,
      volume,
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
            provider: 'aws',
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
        writable: await isWritable(dataDir),
        hookErrors: [...cloud.proxy.hookErrors],
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
