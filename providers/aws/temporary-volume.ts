/**
 * Reading a snapshot: a temporary volume made from it in this instance's zone, attached here on a free
 * device name, waited for until its device appears — and released again: unmounted if a killed run left
 * it mounted, detached, deleted. Only volumes tagged `dssnap:role=exposure` are ever detached or deleted.
 */
import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AttachVolumeCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DetachVolumeCommand,
} from '@aws-sdk/client-ec2';
import { DssnapError } from '../../src/errors.js';
import { ensureUnmounted } from '../../src/host/mounts.js';
import { ownedTags } from '../../src/provider/tags.js';
import { type Exposure, type Snapshot, TagKey, type Tags } from '../../src/provider/types.js';
import { waitFor } from '../../src/provider/wait.js';
import type { AwsContext } from './context.js';
import {
  attachedDevicePath,
  type DeviceNaming,
  freeDeviceNames,
  mountPointsOf,
  nvmeLinkName,
  xenDevicePaths,
} from './devices.js';
import { AwsApiError, isAwsNotFound } from './errors.js';
import type { InstanceIdentity } from './imds.js';
import {
  AwsTagKey,
  describeInstance,
  describeSnapshot,
  exposureVolumes,
  findVolume,
  fromAwsTags,
  toAwsTags,
  waitForVolume,
} from './resources.js';

/** Make `snapshot` readable here as a device. On failure, releases what it created before throwing. */
export async function exposeSnapshot(ctx: AwsContext, snapshot: Snapshot, tags: Tags): Promise<Exposure> {
  const { settings } = ctx;
  const me = await ctx.identity();
  const found = await describeSnapshot(ctx, snapshot.id);
  if (found.State !== 'completed') {
    throw new DssnapError(
      'PROVIDER_ERROR',
      `Snapshot ${snapshot.id} is not ready (${found.State ?? 'unknown state'})`,
      {
        details: { snapshotId: snapshot.id, state: found.State },
      },
    );
  }
  const naming = (snapshot.attributes?.deviceNaming as DeviceNaming | undefined) ?? 'nvme';
  const partition = snapshot.attributes?.partition ? Number(snapshot.attributes.partition) : undefined;
  const createdAt = new Date().toISOString();
  const volumeTags = {
    ...ownedTags(tags, 'exposure', createdAt),
    [AwsTagKey.snapshotId]: snapshot.id,
    [AwsTagKey.deviceNaming]: naming,
  };
  let volumeId: string | undefined;
  try {
    const created = await (await ctx.ec2()).send(
      new CreateVolumeCommand({
        AvailabilityZone: me.availabilityZone,
        SnapshotId: snapshot.id,
        VolumeType: settings.volumeType,
        ClientToken: randomUUID(),
        TagSpecifications: [{ ResourceType: 'volume', Tags: toAwsTags(volumeTags) }],
      }),
      ctx.sendOptions,
    );
    const id = created.VolumeId!;
    volumeId = id;
    await waitForVolume(
      ctx,
      id,
      'to be available',
      (v) => v?.State === 'available',
      (v) => (v.State === 'error' ? 'EC2 reports the volume in state error' : undefined),
    );
    const deviceName = await attachHere(ctx, id, me);
    await waitForVolume(ctx, id, `to be attached to ${me.instanceId}`, (v) =>
      Boolean(v?.Attachments?.some((a) => a.InstanceId === me.instanceId && a.State === 'attached')),
    );
    const where =
      naming === 'nvme'
        ? join(settings.deviceDir, nvmeLinkName(id))
        : xenDevicePaths(deviceName).join(' or ');
    const device = await waitFor(
      async () => {
        const path = attachedDevicePath({
          volumeId: id,
          naming,
          deviceDir: settings.deviceDir,
          deviceName,
          ...(partition === undefined ? {} : { partition }),
        });
        return path ? { done: true, value: path } : { done: false, observed: 'no device yet' };
      },
      {
        description: `the device of ${id} to appear on this host (${where})`,
        minDelayMs: Math.min(settings.pollIntervalMs, 200),
        maxDelayMs: 2_000,
        deadlineMs: settings.volumeTimeoutMs,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      },
    );
    return {
      snapshotId: snapshot.id,
      device,
      ...(snapshot.attributes?.fsType ? { fsType: snapshot.attributes.fsType } : {}),
      resources: [id],
      attributes: { volumeId: id, instanceId: me.instanceId, deviceName, deviceNaming: naming },
    };
  } catch (error) {
    // Undo what this call created; when CreateVolume's answer was lost, find the volume by its tags.
    const ids = volumeId
      ? [volumeId]
      : (
          await exposureVolumes(ctx, [
            { Name: `tag:${TagKey.createdAt}`, Values: [createdAt] },
            { Name: `tag:${AwsTagKey.snapshotId}`, Values: [snapshot.id] },
          ]).catch(() => [])
        ).map((v) => v.VolumeId!);
    for (const id of ids) await releaseVolume(ctx, id).catch(() => undefined);
    throw error;
  }
}

/** Detach (after unmounting it here) and delete one temporary volume. Idempotent: gone is success. */
export async function releaseVolume(ctx: AwsContext, volumeId: string): Promise<void> {
  let volume = await findVolume(ctx, volumeId);
  if (!volume || volume.State === 'deleting' || volume.State === 'deleted') return;
  const tags = fromAwsTags(volume.Tags);
  if (tags[TagKey.role] !== 'exposure') {
    throw new DssnapError(
      'PROVIDER_ERROR',
      `Refusing to detach or delete ${volumeId}: it is not a temporary volume created by dssnap (no ${TagKey.role}=exposure tag)`,
      { details: { volumeId } },
    );
  }
  const attachments = (volume.Attachments ?? []).filter((a) => a.State !== 'detached');
  if (attachments.length > 0) {
    const me = await ctx.identity().catch(() => undefined);
    for (const attachment of attachments) {
      if (me && attachment.InstanceId === me.instanceId) {
        const naming = (tags[AwsTagKey.deviceNaming] as DeviceNaming | undefined) ?? 'nvme';
        await unmountEverywhere(ctx, volumeId, naming, attachment.Device);
      }
      if (attachment.State === 'detaching') continue;
      try {
        await (await ctx.ec2()).send(
          new DetachVolumeCommand({
            VolumeId: volumeId,
            ...(attachment.InstanceId ? { InstanceId: attachment.InstanceId } : {}),
          }),
          ctx.sendOptions,
        );
      } catch (error) {
        // Detached meanwhile: the wait below settles it. IncorrectState (still attaching, busy) is
        // transient: the retry decorator tries the whole release again, from a fresh state.
        if (!isAwsNotFound(error)) throw error;
      }
    }
    volume = await waitForVolume(
      ctx,
      volumeId,
      'to be detached',
      (v) => !v || v.State === 'available' || v.State === 'deleting' || v.State === 'deleted',
    );
  }
  if (volume?.State === 'creating') {
    volume = await waitForVolume(
      ctx,
      volumeId,
      'to be created (before deleting it)',
      (v) => v?.State !== 'creating',
    );
  }
  if (!volume || volume.State === 'deleting' || volume.State === 'deleted') return;
  await (await ctx.ec2())
    .send(new DeleteVolumeCommand({ VolumeId: volumeId }), ctx.sendOptions)
    .catch((error: unknown) => {
      if (!isAwsNotFound(error)) throw error;
    });
}

/** Unmount every mount of the volume's device(s) on this host (a run killed mid-copy leaves one). */
async function unmountEverywhere(
  ctx: AwsContext,
  volumeId: string,
  naming: DeviceNaming,
  deviceName: string | undefined,
): Promise<void> {
  const { deviceDir } = ctx.settings;
  const paths: string[] = [];
  if (naming === 'nvme') {
    const link = nvmeLinkName(volumeId);
    for (const name of await readdir(deviceDir).catch(() => [] as string[])) {
      if (name === link || name.startsWith(`${link}-part`)) paths.push(join(deviceDir, name));
    }
  } else if (deviceName) {
    for (const base of xenDevicePaths(deviceName)) {
      paths.push(base, ...Array.from({ length: 9 }, (_, i) => `${base}${i + 1}`));
    }
  }
  for (const path of paths) {
    for (const mountPoint of await mountPointsOf(path)) await ensureUnmounted(mountPoint);
  }
}

/** Attach `volumeId` here on a free device name; returns the name. */
async function attachHere(ctx: AwsContext, volumeId: string, me: InstanceIdentity): Promise<string> {
  const instance = await describeInstance(ctx, me.instanceId);
  const used = [
    ...(instance.BlockDeviceMappings ?? []).map((m) => m.DeviceName ?? ''),
    ...(instance.RootDeviceName ? [instance.RootDeviceName] : []),
  ].filter(Boolean);
  const names = freeDeviceNames(used).slice(0, 3);
  if (names.length === 0) {
    throw new DssnapError(
      'PROVIDER_ERROR',
      `No free device name on ${me.instanceId} (/dev/sdf-/dev/sdp are all in use)`,
      {
        details: { used },
      },
    );
  }
  let lastError: unknown;
  for (const device of names) {
    try {
      await (await ctx.ec2()).send(
        new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: me.instanceId, Device: device }),
        ctx.sendOptions,
      );
      return device;
    } catch (error) {
      lastError = error;
      // Another attach took the name meanwhile: try the next one.
      if (error instanceof AwsApiError && error.awsCode === 'InvalidParameterValue') continue;
      // The answer was lost (timeout, reset): the attach may have happened all the same.
      const volume = await findVolume(ctx, volumeId).catch(() => undefined);
      const attachment = volume?.Attachments?.find(
        (a) => a.InstanceId === me.instanceId && a.State !== 'detached',
      );
      if (attachment?.Device) return attachment.Device;
      throw error;
    }
  }
  throw lastError;
}
