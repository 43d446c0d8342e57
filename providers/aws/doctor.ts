/**
 * `dssnap doctor --provider aws`: IMDSv2 reachable, credentials valid, and every EC2 action the provider
 * calls checked with DryRun — allowed, denied, or undecided — without changing anything.
 */
import {
  AttachVolumeCommand,
  CreateSnapshotCommand,
  CreateSnapshotsCommand,
  CreateTagsCommand,
  CreateVolumeCommand,
  DeleteSnapshotCommand,
  DeleteVolumeCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { errorMessage } from '../../src/errors.js';
import { type ProviderCheck, TagKey, type Volume } from '../../src/provider/types.js';
import { AwsApiError } from './errors.js';
import type { InstanceIdentity } from './imds.js';
import { awsPermissions } from './permissions.js';
import type { ResolvedAwsSettings } from './schema.js';

export interface DoctorContext {
  settings: ResolvedAwsSettings;
  identity(): Promise<InstanceIdentity>;
  region(): Promise<string>;
  ec2(): Promise<EC2Client>;
  /** The volumes behind DATA_DIR (only called when `hasDataDir`): DryRun on the real volume. */
  locate(): Promise<Volume[]>;
  hasDataDir: boolean;
}

/** Ids that exist nowhere: DryRun checks the permission, not the resource. */
const placeholder = { volume: 'vol-00000000000000000', snapshot: 'snap-00000000000000000' };

type Verdict = 'allowed' | 'denied' | 'credentials' | 'undecided';

/** Every check, in order. Never throws: a failure is a check with ok false. */
export async function awsDoctorChecks(context: DoctorContext): Promise<ProviderCheck[]> {
  const checks: ProviderCheck[] = [];
  let me: InstanceIdentity;
  try {
    me = await context.identity();
    checks.push({
      name: 'aws imds',
      ok: true,
      detail: `IMDSv2 at ${context.settings.imdsEndpoint}: instance ${me.instanceId} in ${me.availabilityZone}`,
    });
  } catch (error) {
    checks.push({ name: 'aws imds', ok: false, detail: errorMessage(error) });
    return checks;
  }
  const region = await context.region();
  checks.push({
    name: 'aws region',
    ok: region === me.region,
    detail:
      region === me.region
        ? region
        : `${region} is in use (region setting, AWS_REGION or the profile), but this instance is in ${me.region}`,
  });
  let volumeId = placeholder.volume;
  if (context.hasDataDir) {
    try {
      volumeId = (await context.locate())[0]?.id ?? volumeId;
    } catch {
      // The core's own "volume" check reports why.
    }
  }
  const client = await context.ec2();
  const probes = probesFor(client, me, volumeId);
  const verdicts: Array<{ action: string; verdict: Verdict; detail: string }> = [];
  for (const { action } of awsPermissions) {
    const probe = probes[action];
    if (!probe) {
      verdicts.push({ action, verdict: 'undecided', detail: 'no DryRun check for this action' });
      continue;
    }
    verdicts.push({ action, ...(await dryRun(probe)) });
  }
  const rejected = verdicts.find((v) => v.verdict === 'credentials');
  checks.push({
    name: 'aws credentials',
    ok: !rejected,
    detail: rejected ? rejected.detail : 'accepted by EC2 (default credential chain)',
  });
  for (const { action, verdict, detail } of verdicts) {
    if (verdict === 'credentials') continue;
    checks.push({ name: `iam ${action}`, ok: verdict !== 'denied', detail });
  }
  return checks;
}

function probesFor(
  client: EC2Client,
  me: InstanceIdentity,
  volumeId: string,
): Record<string, () => Promise<unknown>> {
  const dry = { DryRun: true };
  // The tags the real calls send: a least-privilege policy conditions creation on them.
  const tags = (role: 'snapshot' | 'exposure') => [
    { Key: TagKey.runId, Value: 'dssnap-doctor' },
    { Key: TagKey.role, Value: role },
  ];
  return {
    'ec2:DescribeVolumes': () => client.send(new DescribeVolumesCommand({ ...dry, MaxResults: 5 })),
    'ec2:DescribeInstances': () =>
      client.send(new DescribeInstancesCommand({ ...dry, InstanceIds: [me.instanceId] })),
    'ec2:CreateSnapshot': () =>
      client.send(
        new CreateSnapshotCommand({
          ...dry,
          VolumeId: volumeId,
          TagSpecifications: [{ ResourceType: 'snapshot', Tags: tags('snapshot') }],
        }),
      ),
    'ec2:CreateSnapshots': () =>
      client.send(
        new CreateSnapshotsCommand({
          ...dry,
          InstanceSpecification: { InstanceId: me.instanceId, ExcludeBootVolume: true },
          TagSpecifications: [{ ResourceType: 'snapshot', Tags: tags('snapshot') }],
        }),
      ),
    'ec2:CreateTags': () =>
      client.send(
        new CreateTagsCommand({ ...dry, Resources: [placeholder.snapshot], Tags: tags('snapshot') }),
      ),
    'ec2:DescribeSnapshots': () =>
      client.send(new DescribeSnapshotsCommand({ ...dry, OwnerIds: ['self'], MaxResults: 5 })),
    'ec2:DeleteSnapshot': () =>
      client.send(new DeleteSnapshotCommand({ ...dry, SnapshotId: placeholder.snapshot })),
    'ec2:CreateVolume': () =>
      client.send(
        new CreateVolumeCommand({
          ...dry,
          AvailabilityZone: me.availabilityZone,
          Size: 1,
          VolumeType: 'gp3',
          TagSpecifications: [{ ResourceType: 'volume', Tags: tags('exposure') }],
        }),
      ),
    'ec2:AttachVolume': () =>
      client.send(
        new AttachVolumeCommand({
          ...dry,
          VolumeId: placeholder.volume,
          InstanceId: me.instanceId,
          Device: '/dev/sdp',
        }),
      ),
    'ec2:DetachVolume': () => client.send(new DetachVolumeCommand({ ...dry, VolumeId: placeholder.volume })),
    'ec2:DeleteVolume': () => client.send(new DeleteVolumeCommand({ ...dry, VolumeId: placeholder.volume })),
  };
}

async function dryRun(probe: () => Promise<unknown>): Promise<{ verdict: Verdict; detail: string }> {
  try {
    await probe();
    return { verdict: 'allowed', detail: 'allowed (answered)' };
  } catch (error) {
    if (error instanceof AwsApiError) {
      if (error.awsCode === 'DryRunOperation') return { verdict: 'allowed', detail: 'allowed (DryRun)' };
      if (error.kind === 'denied') return { verdict: 'denied', detail: `DENIED (${error.awsCode})` };
      if (error.kind === 'credentials') return { verdict: 'credentials', detail: error.message };
      return {
        verdict: 'undecided',
        detail: `not decided by DryRun (${error.awsCode}: the placeholder resource does not exist, or a tag condition applies)`,
      };
    }
    return { verdict: 'undecided', detail: `not decided: ${errorMessage(error)}` };
  }
}
