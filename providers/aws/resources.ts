/**
 * EC2 reads shared by the provider's parts: one snapshot, one volume, this instance, dssnap's tagged
 * snapshots and temporary volumes, and the conversions between EC2 shapes and dssnap's.
 */
import {
  DeleteSnapshotCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  type Snapshot as Ec2Snapshot,
  type Volume as Ec2Volume,
  type Filter,
  type Instance,
  paginateDescribeSnapshots,
  paginateDescribeVolumes,
  type Tag,
} from '@aws-sdk/client-ec2';
import { DssnapError } from '../../src/errors.js';
import { type Snapshot, TagKey, type Tags } from '../../src/provider/types.js';
import { waitFor } from '../../src/provider/wait.js';
import type { AwsContext } from './context.js';
import { isAwsNotFound } from './errors.js';

/** Tags the aws provider adds to what it creates, beyond the core's. */
export const AwsTagKey = {
  snapshotId: 'dssnap:snapshot-id',
  retentionClass: 'dssnap:retention-class',
  deviceNaming: 'dssnap:device-naming',
} as const;

/** The snapshot; NOT_FOUND (isNotFound) when it does not exist. */
export async function describeSnapshot(ctx: AwsContext, snapshotId: string): Promise<Ec2Snapshot> {
  const answer = await (await ctx.ec2()).send(
    new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }),
    ctx.sendOptions,
  );
  const found = answer.Snapshots?.[0];
  if (!found) {
    throw new DssnapError('NOT_FOUND', `The EBS snapshot ${snapshotId} does not exist`, {
      details: { provider: 'aws', id: snapshotId },
    });
  }
  return found;
}

/** The volume, or undefined when it does not exist (any more). */
export async function findVolume(ctx: AwsContext, volumeId: string): Promise<Ec2Volume | undefined> {
  try {
    const answer = await (await ctx.ec2()).send(
      new DescribeVolumesCommand({ VolumeIds: [volumeId] }),
      ctx.sendOptions,
    );
    return answer.Volumes?.[0];
  } catch (error) {
    if (isAwsNotFound(error)) return undefined;
    throw error;
  }
}

/** Poll a volume until `done` says so (or `failed` gives a reason), with the core's waiting helper. */
export function waitForVolume(
  ctx: AwsContext,
  volumeId: string,
  what: string,
  done: (volume: Ec2Volume | undefined) => boolean,
  failed?: (volume: Ec2Volume) => string | undefined,
): Promise<Ec2Volume | undefined> {
  const { settings, signal } = ctx;
  return waitFor(
    async () => {
      const volume = await findVolume(ctx, volumeId);
      if (done(volume)) return { done: true, value: volume };
      const reason = volume && failed?.(volume);
      if (reason) return { failed: true, reason };
      return {
        done: false,
        observed: volume
          ? { state: volume.State, attachments: volume.Attachments?.map((a) => a.State) }
          : 'gone',
      };
    },
    {
      description: `EBS volume ${volumeId} ${what}`,
      minDelayMs: settings.pollIntervalMs,
      maxDelayMs: Math.max(settings.pollIntervalMs, 10_000),
      deadlineMs: settings.volumeTimeoutMs,
      ...(signal ? { signal } : {}),
    },
  );
}

export async function describeInstance(ctx: AwsContext, instanceId: string): Promise<Instance> {
  const answer = await (await ctx.ec2()).send(
    new DescribeInstancesCommand({ InstanceIds: [instanceId] }),
    ctx.sendOptions,
  );
  const instance = answer.Reservations?.[0]?.Instances?.[0];
  if (!instance) {
    throw new DssnapError('PROVIDER_ERROR', `EC2 does not know this instance (${instanceId})`, {
      hint: 'Check that the region (provider setting region, or IMDS) is the instance’s own.',
    });
  }
  return instance;
}

/** Snapshots created by dssnap (tag `dssnap:run-id`), narrowed server-side by `filters`. */
export async function taggedSnapshots(ctx: AwsContext, filters: Filter[]): Promise<Ec2Snapshot[]> {
  const found: Ec2Snapshot[] = [];
  const pages = paginateDescribeSnapshots(
    { client: await ctx.ec2(), pageSize: 500 },
    { OwnerIds: ['self'], Filters: [{ Name: 'tag-key', Values: [TagKey.runId] }, ...filters] },
  );
  for await (const page of pages) found.push(...(page.Snapshots ?? []));
  return found;
}

/** Temporary volumes created by dssnap (tag `dssnap:role` = exposure), narrowed by `filters`. */
export async function exposureVolumes(ctx: AwsContext, filters: Filter[]): Promise<Ec2Volume[]> {
  const found: Ec2Volume[] = [];
  const pages = paginateDescribeVolumes(
    { client: await ctx.ec2(), pageSize: 500 },
    { Filters: [{ Name: `tag:${TagKey.role}`, Values: ['exposure'] }, ...filters] },
  );
  for await (const page of pages) found.push(...(page.Volumes ?? []));
  return found;
}

/** Delete snapshots by id; already gone is success. */
export async function deleteSnapshotIds(ctx: AwsContext, ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    await (await ctx.ec2())
      .send(new DeleteSnapshotCommand({ SnapshotId: id }), ctx.sendOptions)
      .catch((error: unknown) => {
        if (!isAwsNotFound(error)) throw error;
      });
  }
}

/** dssnap tags → EC2 tags. */
export function toAwsTags(tags: Tags): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

/** EC2 tags → a plain record. */
export function fromAwsTags(tags: readonly Tag[] | undefined): Record<string, string> {
  return Object.fromEntries(
    (tags ?? []).filter((t) => t.Key !== undefined).map((t) => [t.Key!, t.Value ?? '']),
  );
}

/** An EC2 snapshot as dssnap sees it (creation instant from its tag, else EC2's start time). */
export function toSnapshot(snapshot: Ec2Snapshot): Snapshot {
  const tags = fromAwsTags(snapshot.Tags);
  return {
    id: snapshot.SnapshotId!,
    provider: 'aws',
    volumeId: snapshot.VolumeId ?? '',
    createdAt: tags[TagKey.createdAt] ?? snapshot.StartTime?.toISOString() ?? '',
    tags,
    attributes: {
      state: snapshot.State ?? '',
      ...(snapshot.VolumeSize === undefined ? {} : { volumeSizeGiB: String(snapshot.VolumeSize) }),
    },
  };
}
