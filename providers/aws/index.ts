/**
 * The aws provider: EBS snapshots of the volume(s) behind DATA_DIR on this EC2 instance, read through
 * a temporary volume made from the snapshot and attached here. Crash-consistent by itself, so the core
 * freezes the filesystem around the create call (default quiesce `fsfreeze`). Everything it creates is
 * tagged at creation (`TagSpecifications`), so a crashed run's leftovers are found by tag.
 *
 * Loaded only when the aws provider is used (the registry imports this module lazily), so the AWS SDK
 * never slows `dssnap --help` or the other providers.
 */
import { CreateTagsCommand, type Snapshot as Ec2Snapshot, type Filter } from '@aws-sdk/client-ec2';
import { DssnapError } from '../../src/errors.js';
import { parseProviderSettings } from '../../src/provider/settings.js';
import { matchesSelector, newestFirst, orphanSnapshots } from '../../src/provider/tags.js';
import {
  type Exposure,
  type OwnedResource,
  type ProviderFactory,
  type ProviderOptions,
  type Snapshot,
  type SnapshotProgress,
  type SnapshotProvider,
  TagKey,
  type TagSelector,
  type Tags,
} from '../../src/provider/types.js';
import { createAwsContext } from './context.js';
import { awsDoctorChecks } from './doctor.js';
import { isAwsNotFound, isAwsPermanent } from './errors.js';
import { locateVolumes } from './locate.js';
import { awsPermissions } from './permissions.js';
import {
  AwsTagKey,
  deleteSnapshotIds,
  describeSnapshot,
  exposureVolumes,
  fromAwsTags,
  taggedSnapshots,
  toAwsTags,
  toSnapshot,
} from './resources.js';
import { resolveSettings, settingsSchema } from './schema.js';
import { createSnapshotSet } from './snapshots.js';
import { exposeSnapshot, releaseVolume } from './temporary-volume.js';

export { AwsTagKey, fromAwsTags };

/** The aws provider, plus the number of EC2 requests it sent per action (for reports and tests). */
export interface AwsProvider extends SnapshotProvider {
  apiCalls(): Record<string, number>;
}

export const factory: ProviderFactory = {
  id: 'aws',
  description: 'AWS EBS: snapshots of the EBS volume(s) behind DATA_DIR, read through a temporary volume',
  create: async (options) => createAwsProvider(options),
};

/**
 * Build the aws provider. Throws CONFIG_INVALID for bad settings; contacts nothing (IMDS, EC2) until
 * a method needs it.
 */
export function createAwsProvider(options: ProviderOptions): AwsProvider {
  const settings = resolveSettings(parseProviderSettings('aws', settingsSchema, options.settings));
  const ctx = createAwsContext(settings, options.signal);

  const provider: AwsProvider = {
    id: 'aws',
    defaultQuiesce: 'fsfreeze',
    supportedQuiesce: { fsfreeze: true, stop: true, none: true },
    permissions: awsPermissions,
    apiCalls: () => ctx.apiCalls(),

    locate: (dataDir) => locateVolumes(ctx, dataDir),

    createSnapshots: (volumes, tags) => createSnapshotSet(ctx, volumes, tags),

    async progress(snapshot: Snapshot): Promise<SnapshotProgress> {
      const found = await describeSnapshot(ctx, snapshot.id);
      if (found.State === 'completed') return { state: 'ready' };
      if (found.State === 'error') {
        return { state: 'failed', reason: found.StateMessage || 'EC2 reports the snapshot in state error' };
      }
      const percent = Number.parseInt(found.Progress ?? '', 10);
      return Number.isNaN(percent) ? { state: 'pending' } : { state: 'pending', percent };
    },

    expose: (snapshot, tags) => exposeSnapshot(ctx, snapshot, tags),

    async ensureReleased(exposure: Exposure): Promise<void> {
      for (const volumeId of exposure.resources) await releaseVolume(ctx, volumeId);
    },

    async ensureDeleted(snapshot: Snapshot): Promise<void> {
      let found: Ec2Snapshot;
      try {
        found = await describeSnapshot(ctx, snapshot.id);
      } catch (error) {
        if (isAwsNotFound(error)) return;
        throw error;
      }
      // Guard: never delete a snapshot dssnap did not create, whatever id it was handed.
      if (fromAwsTags(found.Tags)[TagKey.runId] === undefined) {
        throw new DssnapError(
          'PROVIDER_ERROR',
          `Refusing to delete ${snapshot.id}: it was not created by dssnap (no ${TagKey.runId} tag)`,
          { details: { snapshotId: snapshot.id } },
        );
      }
      await deleteSnapshotIds(ctx, [snapshot.id]);
    },

    async retain(snapshot: Snapshot, tags: Tags): Promise<Snapshot> {
      const found = await describeSnapshot(ctx, snapshot.id);
      const added: Tags = {
        ...tags,
        [TagKey.retain]: 'true',
        ...(settings.retentionClass ? { [AwsTagKey.retentionClass]: settings.retentionClass } : {}),
      };
      await (await ctx.ec2()).send(
        new CreateTagsCommand({ Resources: [snapshot.id], Tags: toAwsTags(added) }),
        ctx.sendOptions,
      );
      const current = toSnapshot(found);
      return {
        ...current,
        attributes: { ...snapshot.attributes, ...current.attributes },
        tags: { ...current.tags, ...added },
      };
    },

    async list(selector: TagSelector): Promise<Snapshot[]> {
      const filters: Filter[] = [];
      if (selector.runId !== undefined)
        filters.push({ Name: `tag:${TagKey.runId}`, Values: [selector.runId] });
      if (selector.retained === true) filters.push({ Name: `tag:${TagKey.retain}`, Values: ['true'] });
      const snapshots = (await taggedSnapshots(ctx, filters))
        .map(toSnapshot)
        .filter((s) => s.tags[TagKey.role] === 'snapshot' && matchesSelector(s.tags, selector));
      return newestFirst(snapshots);
    },

    async orphans(selector: TagSelector): Promise<OwnedResource[]> {
      const anyRetention = { ...selector, retained: undefined };
      const runFilter: Filter[] =
        selector.runId === undefined ? [] : [{ Name: `tag:${TagKey.runId}`, Values: [selector.runId] }];
      const volumes: OwnedResource[] = (await exposureVolumes(ctx, runFilter))
        .filter((v) => v.State !== 'deleting' && v.State !== 'deleted')
        .map((v) => ({ volume: v, tags: fromAwsTags(v.Tags) }))
        .filter(({ tags }) => matchesSelector(tags, anyRetention))
        .map(({ volume, tags }) => ({
          kind: 'exposure' as const,
          id: volume.VolumeId!,
          tags,
          attributes: {
            state: volume.State ?? '',
            snapshotId: tags[AwsTagKey.snapshotId] ?? '',
            attachedTo: (volume.Attachments ?? []).map((a) => a.InstanceId).join(','),
          },
        }));
      return [
        ...volumes,
        ...orphanSnapshots((await taggedSnapshots(ctx, runFilter)).map(toSnapshot), selector),
      ];
    },

    doctor: (context) =>
      awsDoctorChecks({
        settings,
        identity: ctx.identity,
        region: ctx.region,
        ec2: ctx.ec2,
        locate: () => locateVolumes(ctx, context.dataDir!),
        hasDataDir: context.dataDir !== undefined,
      }),

    isNotFound: isAwsNotFound,
    isPermanent: isAwsPermanent,
  };
  return provider;
}
