/**
 * Creating snapshots: one volume with CreateSnapshot, several as one crash-consistent CreateSnapshots set
 * of this instance (its other volumes excluded). Tagged at creation; on a failure, what the call made is
 * deleted before it throws — found by its tags when EC2's answer was lost.
 */
import { CreateSnapshotCommand, CreateSnapshotsCommand } from '@aws-sdk/client-ec2';
import { DssnapError } from '../../src/errors.js';
import { ownedTags } from '../../src/provider/tags.js';
import { type Snapshot, TagKey, type Tags, type Volume } from '../../src/provider/types.js';
import type { AwsContext } from './context.js';
import { AwsApiError } from './errors.js';
import { deleteSnapshotIds, describeInstance, taggedSnapshots, toAwsTags } from './resources.js';

/** Volume facts a snapshot carries, for `expose` (fs type, device naming, partition). */
const carried = ['instanceId', 'availabilityZone', 'region', 'deviceNaming', 'partition'] as const;

export async function createSnapshotSet(
  ctx: AwsContext,
  volumes: readonly Volume[],
  tags: Tags,
): Promise<Snapshot[]> {
  const createdAt = new Date().toISOString();
  const snapshotTags = ownedTags(tags, 'snapshot', createdAt);
  const tagSpecifications = [{ ResourceType: 'snapshot' as const, Tags: toAwsTags(snapshotTags) }];
  const description = `dssnap ${tags[TagKey.runId] ?? ''} ${tags[TagKey.dataDir] ?? ''}`.trim().slice(0, 255);
  const made = (snapshot: { SnapshotId?: string; VolumeId?: string }): Snapshot => {
    const volume = volumes.find((v) => v.id === snapshot.VolumeId);
    const attributes: Record<string, string> = volume
      ? { fsType: volume.fsType, mountPoint: volume.mountPoint }
      : {};
    for (const key of carried)
      if (volume?.attributes?.[key] !== undefined) attributes[key] = volume.attributes[key];
    return {
      id: snapshot.SnapshotId!,
      provider: 'aws',
      volumeId: snapshot.VolumeId!,
      createdAt,
      tags: snapshotTags,
      attributes,
    };
  };
  let created: Snapshot[] = [];
  try {
    if (volumes.length === 1) {
      const answer = await (await ctx.ec2()).send(
        new CreateSnapshotCommand({
          VolumeId: volumes[0]!.id,
          Description: description,
          TagSpecifications: tagSpecifications,
        }),
        ctx.sendOptions,
      );
      return [made(answer)];
    }
    const me = await ctx.identity();
    const instance =
      ctx.located && Date.now() - ctx.located.at < 600_000
        ? ctx.located.instance
        : await describeInstance(ctx, me.instanceId);
    const wanted = new Set(volumes.map((v) => v.id));
    const mappings = instance.BlockDeviceMappings ?? [];
    const boot = mappings.find((m) => m.DeviceName === instance.RootDeviceName)?.Ebs?.VolumeId;
    const exclude = mappings
      .map((m) => m.Ebs?.VolumeId)
      .filter((id): id is string => Boolean(id) && id !== boot && !wanted.has(id!));
    const answer = await (await ctx.ec2()).send(
      new CreateSnapshotsCommand({
        InstanceSpecification: {
          InstanceId: me.instanceId,
          ExcludeBootVolume: boot === undefined || !wanted.has(boot),
          ...(exclude.length > 0 ? { ExcludeDataVolumeIds: exclude } : {}),
        },
        Description: description,
        TagSpecifications: tagSpecifications,
      }),
      ctx.sendOptions,
    );
    const returned = (answer.Snapshots ?? []).map(made);
    created = returned.filter((s) => wanted.has(s.volumeId));
    // Snapshots of volumes the set should have excluded (an emulator may ignore the exclusion) are not ours to keep.
    await deleteSnapshotIds(
      ctx,
      returned.filter((s) => !wanted.has(s.volumeId)).map((s) => s.id),
    );
    const missing = [...wanted].filter((id) => !created.some((s) => s.volumeId === id));
    if (missing.length > 0) {
      throw new DssnapError(
        'PROVIDER_ERROR',
        `CreateSnapshots returned no snapshot of ${missing.join(', ')}`,
        {
          details: { missing, returned: returned.map((s) => s.id) },
        },
      );
    }
    return created;
  } catch (error) {
    let leftovers = created.map((s) => s.id);
    if (error instanceof AwsApiError && error.kind === 'transient') {
      // The answer was lost (a timeout after EC2 accepted the call): find this call's snapshots by tag.
      const filters = [{ Name: `tag:${TagKey.createdAt}`, Values: [createdAt] }];
      if (tags[TagKey.runId]) filters.push({ Name: `tag:${TagKey.runId}`, Values: [tags[TagKey.runId]!] });
      leftovers = (await taggedSnapshots(ctx, filters).catch(() => [])).map((s) => s.SnapshotId!);
    }
    await deleteSnapshotIds(ctx, leftovers).catch(() => undefined);
    throw error;
  }
}
