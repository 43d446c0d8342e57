/**
 * `locate` for EBS: the volume behind DATA_DIR's filesystem and behind every filesystem mounted below
 * it, from an explicit `--volume`, the NVMe by-id link or serial (Nitro), or the attachment name (Xen);
 * each checked with DescribeVolumes to be attached to this instance. Changes nothing.
 */
import { realpath } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { DescribeVolumesCommand, type Volume as Ec2Volume } from '@aws-sdk/client-ec2';
import { DssnapError } from '../../src/errors.js';
import { mountsBelow } from '../../src/host/mounts.js';
import { findMount, type MountInfo, realDataDir } from '../../src/provider/find-mount.js';
import type { Volume } from '../../src/provider/types.js';
import type { AwsContext } from './context.js';
import { type DeviceIdentity, deviceLetters, diskOf, nvmeLinkName, volumeOfDevice } from './devices.js';
import { isAwsNotFound } from './errors.js';
import type { InstanceIdentity } from './imds.js';
import { describeInstance } from './resources.js';

/** The volumes holding `dataDir`, the one holding DATA_DIR itself first. */
export async function locateVolumes(ctx: AwsContext, dataDir: string): Promise<Volume[]> {
  const { settings } = ctx;
  const path = await realDataDir(dataDir);
  const me = await ctx.identity();
  const primary = await findMount(path);
  if (!primary.device.startsWith('/dev/')) {
    throw new DssnapError(
      'UNSUPPORTED',
      `DATA_DIR '${dataDir}' is on ${primary.fsType} (${primary.source || 'no device'} at ${primary.target}), not on an EBS volume`,
      {
        hint: 'Put DATA_DIR on an EBS volume of this instance, or use --mode cold.',
        details: { dataDir, fsType: primary.fsType },
      },
    );
  }
  // Filesystems mounted below DATA_DIR join the set; non-block ones (tmpfs…) cannot, and preflight refuses them.
  const nested = (await Promise.all((await mountsBelow(path)).map((target) => findMount(target)))).filter(
    (m) => m.device.startsWith('/dev/'),
  );
  const mounts = [primary, ...nested];
  for (const override of settings.volumes) {
    if (override.mountPoint && !mounts.some((m) => m.target === override.mountPoint)) {
      throw new DssnapError(
        'USAGE',
        `--volume ${override.volumeId}=${override.mountPoint}: ${override.mountPoint} is neither the mount holding DATA_DIR (${primary.target}) nor a filesystem mounted below it`,
        { hint: `Mounts found: ${mounts.map((m) => m.target).join(', ')}.` },
      );
    }
  }
  const identities: DeviceIdentity[] = [];
  for (const [index, mount] of mounts.entries())
    identities.push(await identifyMount(ctx, mount, index === 0, me));
  const ids = [...new Set(identities.map((i) => i.volumeId))];
  if (ids.length > 1) ctx.located = { instance: await describeInstance(ctx, me.instanceId), at: Date.now() };
  const described = await describeAll(ctx, ids, me);
  const region = await ctx.region();
  return mounts.map((mount, index) => {
    const found = identities[index]!;
    const volume = described.find((v) => v.VolumeId === found.volumeId);
    const attachment = volume?.Attachments?.find(
      (a) => a.InstanceId === me.instanceId && a.State === 'attached',
    );
    if (!volume || !attachment) {
      throw new DssnapError(
        'UNSUPPORTED',
        `EBS volume ${found.volumeId} (holding ${mount.target}) is not attached to this instance (${me.instanceId})`,
        {
          hint: 'dssnap snapshots volumes of the instance it runs on; check --volume.',
          details: { volumeId: found.volumeId },
        },
      );
    }
    const inside = index === 0 ? relative(mount.target, path) : '';
    return {
      id: found.volumeId,
      mountPoint: mount.target,
      relativePath: join(mount.fsRoot.replace(/^\/+/, ''), inside).replace(/^\.$/, ''),
      fsType: mount.fsType,
      device: mount.device,
      attributes: {
        instanceId: me.instanceId,
        availabilityZone: me.availabilityZone,
        region,
        deviceName: attachment.Device ?? '',
        deviceNaming: found.naming,
        ...(found.partition === undefined ? {} : { partition: String(found.partition) }),
      },
    };
  });
}

async function describeAll(ctx: AwsContext, ids: string[], me: InstanceIdentity): Promise<Ec2Volume[]> {
  try {
    const answer = await (await ctx.ec2()).send(
      new DescribeVolumesCommand({ VolumeIds: ids }),
      ctx.sendOptions,
    );
    return answer.Volumes ?? [];
  } catch (error) {
    if (!isAwsNotFound(error)) throw error;
    throw new DssnapError(
      'UNSUPPORTED',
      `EBS volume(s) ${ids.join(', ')}: at least one does not exist in ${await ctx.region()} (this instance is in ${me.region})`,
      { cause: error, hint: 'Check --volume, and that the region is this instance’s.' },
    );
  }
}

/** One mounted filesystem's volume: explicit override, by-id link / NVMe serial, else Xen attachment name. */
async function identifyMount(
  ctx: AwsContext,
  mount: MountInfo,
  isPrimary: boolean,
  me: InstanceIdentity,
): Promise<DeviceIdentity> {
  const { settings } = ctx;
  const override =
    settings.volumes.find((o) => o.mountPoint === mount.target) ??
    (isPrimary ? settings.volumes.find((o) => o.mountPoint === undefined) : undefined);
  const { disk, partition } = await diskOf(await realpath(mount.device).catch(() => mount.device));
  const withPartition = partition === undefined ? {} : { partition };
  if (override) {
    const byLinks = await volumeOfDevice(mount.device, settings.deviceDir);
    const naming = byLinks?.naming ?? (/\/xvd/.test(disk) ? 'xen' : 'nvme');
    return { volumeId: override.volumeId, naming, ...withPartition };
  }
  const found = await volumeOfDevice(mount.device, settings.deviceDir);
  if (found) return found;
  // Xen instances: the kernel name follows the attachment name (/dev/sdf → /dev/xvdf).
  if (/^\/dev\/(xvd|sd)[a-z]+$/.test(disk)) {
    const attached = await (await ctx.ec2()).send(
      new DescribeVolumesCommand({ Filters: [{ Name: 'attachment.instance-id', Values: [me.instanceId] }] }),
      ctx.sendOptions,
    );
    for (const volume of attached.Volumes ?? []) {
      const attachment = volume.Attachments?.find((a) => a.InstanceId === me.instanceId);
      if (attachment?.Device && deviceLetters(attachment.Device) === deviceLetters(disk)) {
        return { volumeId: volume.VolumeId!, naming: 'xen', ...withPartition };
      }
    }
  }
  throw new DssnapError(
    'UNSUPPORTED',
    `${mount.target} is on ${mount.device}, which is not an EBS volume attached to this instance (${me.instanceId})`,
    {
      hint: `dssnap finds EBS volumes by their ${settings.deviceDir}/${nvmeLinkName('vol-…')} link or NVMe serial (lsblk -o NAME,SERIAL), or on Xen instances by attachment name. Give the volume explicitly with --volume vol-… (or vol-…=${mount.target} for a volume mounted below DATA_DIR).`,
      details: { mountPoint: mount.target, device: mount.device, instanceId: me.instanceId },
    },
  );
}
