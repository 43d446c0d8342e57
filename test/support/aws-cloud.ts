/**
 * A whole "EC2 instance" for tests: moto's EC2 emulator behind the fault-injecting proxy, a fake IMDSv2,
 * and the host simulator turning what moto reports into real devices — the instance's data volume is a
 * real XFS or ext4 on a loop device, mounted, holding a generated DATA_DIR; a snapshot copies its image;
 * a volume made from a snapshot and attached here appears as a loop device with the
 * `nvme-Amazon_Elastic_Block_Store_vol…` link the provider waits for. Only EC2's control plane is
 * emulated: the SDK, HTTP, devices, mounts, fsfreeze and the copy are real.
 */
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
import { TagKey } from '../../src/provider/types.js';
import { type FaultProxy, type FaultRule, formField, startFaultProxy } from '../fakes/fault-proxy.js';
import type { HostSimulator } from '../fakes/host-simulator.js';
import { type FakeImds, startFakeImds } from '../fakes/imds-aws.js';
import type { GenerateDataDirOptions } from '../fixtures/generate-data-dir.js';
import * as harness from './cloud-harness.js';
import { type Moto, startMoto } from './moto.js';

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

export interface AwsTestCloud extends harness.HarnessCloud<AwsLeftovers> {
  moto: Moto;
  proxy: FaultProxy;
  imds: FakeImds;
  simulator: HostSimulator;
  instanceId: string;
  /** A client straight to moto (not through the proxy: never faulted, never counted). */
  ec2: EC2Client;
  /** Create an EBS volume, attach it here, make a filesystem on it and mount it at `mountPoint`. */
  createDataVolume(options: {
    fsType: harness.FsType;
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
  /** dssnap snapshots in moto that are retained. */
  retainedSnapshots(): Promise<Array<{ id: string; tags: Record<string, string> }>>;
}

/** What dssnap left in moto and on the host: temporary volumes, unretained snapshots, extra devices. */
export interface AwsLeftovers {
  volumes: string[];
  snapshots: string[];
  devices: string[];
}

export type AwsFault = 'throttle' | 'rate' | 'server' | 'denied' | 'timeout' | 'reset' | 'incorrect-state';

export async function createAwsTestCloud(): Promise<AwsTestCloud> {
  Object.assign(process.env, awsTestEnv);
  return harness.createCloud({ name: 'aws', poolMb: 6144, deviceDir: 'dev/disk/by-id' }, async (base) => {
    const { simulator } = base;
    const moto = await startMoto();
    base.defer(() => moto.stop());
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
    base.defer(() => imds.close());
    const proxy = await startFaultProxy({ target: moto.endpoint, classify: formField('Action') });
    base.defer(() => proxy.close());
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
            base.hookErrors.push(error);
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
      work: base.work,
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
        await base.formatAndMount(loop, fsType, mountPoint);
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
      backgroundErrors: () => [...proxy.hookErrors, ...base.hookErrors],
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
      dispose: base.dispose,
    };
    return cloud;
  });
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

function ec2Error(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>00000000-fault-proxy</RequestID></Response>`;
}

export type HostState = harness.HostState<AwsLeftovers>;

/** Nothing left anywhere, DSS running, DATA_DIR writable. */
export const cleanHostState: HostState = harness.cleanState({ volumes: [], snapshots: [], devices: [] });

export interface AwsDssHost extends harness.CloudDssHost<AwsTestCloud> {
  volume: DataVolume;
}

/**
 * A DSS host on EC2: a data volume (XFS by default) mounted at `<work>/data`, DATA_DIR generated in
 * `<work>/data/dss` (so it is a directory inside the volume), owned by nobody.
 */
export async function createAwsDssHost(
  options: { fsType?: harness.FsType; sizeGiB?: number; generate?: Omit<GenerateDataDirOptions, 'dir'> } = {},
): Promise<AwsDssHost> {
  return harness.disposeOnFailure(await createAwsTestCloud(), async (cloud) => {
    const volume = await cloud.createDataVolume({
      fsType: options.fsType ?? 'xfs',
      mountPoint: join(cloud.work, 'data'),
      device: '/dev/sdf',
      sizeGiB: options.sizeGiB ?? 1,
    });
    const host = await harness.createCloudDssHost(cloud, {
      provider: 'aws',
      dataMount: volume.mountPoint,
      seed: 4,
      ...(options.generate ? { generate: options.generate } : {}),
    });
    return { ...host, volume };
  });
}
