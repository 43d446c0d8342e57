/**
 * The Azure provider: DATA_DIR on an Azure managed data disk of this VM. A snapshot is an incremental
 * (by default) managed-disk snapshot; several disks are snapshotted together while their filesystems
 * are frozen (the core's fsfreeze, the default quiesce). The exposure is a temporary managed disk made
 * from the snapshot, attached to this VM on a free LUN; the core mounts its device read-only.
 * Everything created is tagged (`dssnap:*`); ARM has no server-side tag filter for snapshots, so
 * `list` and `orphans` filter the resource group's snapshots and disks here.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { relative } from 'node:path';
import { rootCertificates } from 'node:tls';
import type { TokenCredential } from '@azure/identity';
import { DssnapError } from '../../src/errors.js';
import { mountPointsOf } from '../../src/host/device-mounts.js';
import { ensureUnmounted, mountsBelow } from '../../src/host/mounts.js';
import { findMount, type MountInfo, realDataDir } from '../../src/provider/find-mount.js';
import { matchesSelector, newestFirst, orphanSnapshots, ownedTags } from '../../src/provider/tags.js';
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
  type Volume,
} from '../../src/provider/types.js';
import { waitFor } from '../../src/provider/wait.js';
import { type ArmClient, type ArmSnapshot, createArmClient, type Disk } from './arm.js';
import {
  type DeviceLookup,
  defaultDeviceDirs,
  deviceOfLun,
  lunOfDisk,
  partitionOf,
  wholeDisk,
} from './devices.js';
import { azureDoctorChecks, type DoctorContext } from './doctor.js';
import { AzureError, isAzureNotFound, isAzurePermanent } from './errors.js';
import { cloudEndpoints, defaultImdsEndpoint, type InstanceMetadata, readInstanceMetadata } from './imds.js';
import { azurePermissions } from './permissions.js';
import { formatResourceId, parseResourceId, resourceName, sameResource } from './resource-id.js';
import { type AzureSettings, diskOverrides, diskSkus, parseAzureSettings } from './settings.js';

/** Filesystems whose clone can be mounted next to the original (XFS with nouuid). */
const supportedFsTypes = new Set(['xfs', 'ext4', 'ext3', 'ext2']);

/** Tag on a temporary disk naming the snapshot it was made from. */
const snapshotTag = 'dssnap:snapshot';

export const factory: ProviderFactory = {
  id: 'azure',
  description:
    'Azure managed disks: incremental snapshots, read through a temporary disk attached to this VM',
  create: async (options) => createAzureProvider(options),
};

/** Test seams: a fake credential and an agent trusting a test certificate; a fake sysfs root. */
export interface AzureProviderOverrides {
  credential?: TokenCredential;
  agent?: Agent;
  sysRoot?: string;
}

/** Where this VM is and where dssnap creates its resources. */
interface AzureContext extends DoctorContext {
  scope: string;
}

/**
 * Build an Azure provider. Throws CONFIG_INVALID for bad settings; makes no request and loads no SDK
 * until a method needs it.
 */
export function createAzureProvider(
  options: ProviderOptions,
  overrides: AzureProviderOverrides = {},
): SnapshotProvider {
  const settings = parseAzureSettings(options.settings);
  const overridesOf = diskOverrides(settings);
  const imdsEndpoint = settings.imdsEndpoint ?? defaultImdsEndpoint;
  const lookup: DeviceLookup = {
    deviceDirs: settings.deviceDir ? [settings.deviceDir] : defaultDeviceDirs,
    ...(overrides.sysRoot ? { sysRoot: overrides.sysRoot } : {}),
  };
  let contextPromise: Promise<AzureContext> | undefined;
  let clientPromise: Promise<ArmClient> | undefined;

  function metadata(): Promise<InstanceMetadata> {
    return readInstanceMetadata(imdsEndpoint, options.signal ? { signal: options.signal } : {});
  }

  /** Settings first, IMDS for the rest (read once; a failed read is retried on the next call). */
  function context(): Promise<AzureContext> {
    contextPromise ??= resolveContext(settings, metadata).catch((error: unknown) => {
      contextPromise = undefined;
      throw error;
    });
    return contextPromise;
  }

  function client(): Promise<ArmClient> {
    clientPromise ??= context()
      .then(async (ctx) =>
        createArmClient({
          endpoint: ctx.endpoint,
          scope: ctx.scope,
          subscription: ctx.subscription,
          pollIntervalMs: settings.pollIntervalMs ?? 1000,
          requestRetries: settings.requestRetries ?? 3,
          requestRetryDelayMs: settings.requestRetryDelayMs ?? 800,
          ...(settings.managedIdentityClientId
            ? { managedIdentityClientId: settings.managedIdentityClientId }
            : {}),
          ...(overrides.credential ? { credential: overrides.credential } : {}),
          ...(overrides.agent
            ? { agent: overrides.agent }
            : settings.caFile
              ? { agent: await agentTrusting(settings.caFile) }
              : {}),
          ...(options.signal ? { signal: options.signal } : {}),
        }),
      )
      .catch((error: unknown) => {
        clientPromise = undefined;
        throw error;
      });
    return clientPromise;
  }

  /** The volume of one mounted filesystem: its disk by LUN (or the `disk` setting), from IMDS. */
  async function volumeOf(
    mount: MountInfo,
    relativePath: string,
    primary: boolean,
    vm: InstanceMetadata | undefined,
  ): Promise<Volume> {
    if (!supportedFsTypes.has(mount.fsType)) {
      throw new DssnapError(
        'UNSUPPORTED',
        `${mount.target} is a ${mount.fsType} filesystem: the azure provider snapshots XFS and ext2/3/4 filesystems on managed data disks`,
        {
          hint:
            mount.fsType === 'btrfs'
              ? 'Use the btrfs provider (--provider btrfs), or --mode cold.'
              : 'Move DATA_DIR to an XFS or ext4 filesystem on an Azure data disk, or use --mode cold.',
          details: { mountPoint: mount.target, fsType: mount.fsType },
        },
      );
    }
    const { disk, partition } = await wholeDisk(mount.device, overrides.sysRoot);
    const lun = await lunOfDisk(disk, lookup);
    const explicit = (
      overridesOf.find((override) => override.mountPoint === mount.target) ??
      (primary ? overridesOf.find((override) => override.mountPoint === undefined) : undefined)
    )?.diskId;
    const attached = vm?.dataDisks.find((dataDisk) =>
      explicit ? sameResource(dataDisk.diskId, explicit) : dataDisk.lun === lun,
    );
    const diskId = explicit ?? attached?.diskId;
    if (!diskId) {
      throw new DssnapError(
        'UNSUPPORTED',
        lun === undefined
          ? `${mount.target} (${mount.device}) is not on an Azure managed data disk: no LUN found for ${disk} under ${lookup.deviceDirs.join(', ')} nor in sysfs`
          : `The Instance Metadata Service lists no managed data disk at LUN ${lun}, where ${mount.target} (${disk}) is`,
        {
          hint: `DATA_DIR must be on a managed data disk (not the OS or temporary disk). Set the provider setting deviceDir if the LUN links live elsewhere, or name the disk: disks: ['<disk resource id>'] (or '<id>=${mount.target}' for a filesystem mounted below DATA_DIR).`,
          details: { mountPoint: mount.target, device: mount.device, disk, lun },
        },
      );
    }
    const id = formatResourceId(parseResourceId(diskId, 'disks'));
    return {
      id,
      mountPoint: mount.target,
      relativePath,
      fsType: mount.fsType,
      device: mount.device,
      attributes: {
        disk: parseResourceId(id).name,
        ...(lun === undefined ? {} : { lun: String(lun) }),
        ...(partition === undefined ? {} : { partition: String(partition) }),
        ...(attached?.storageAccountType ? { sku: attached.storageAccountType } : {}),
        ...(vm ? { vm: vm.vmName } : {}),
      },
    };
  }

  /** The disk made from `snapshot` (new, or left by an earlier try of this run: expose is retried). */
  async function exposureDisk(
    arm: ArmClient,
    ctx: AzureContext,
    snapshot: Snapshot,
    tags: Tags,
  ): Promise<Disk> {
    const source = parseResourceId(snapshot.id, 'snapshots');
    const found = await arm.getSnapshot(source.resourceGroup, source.name);
    const runId = tags[TagKey.runId] ?? '';
    const name = resourceName(
      '',
      source.name.replace(/^dssnap-/, 'dssnap-x-'),
      `x${shortHash(runId || source.name)}`,
    );
    const existing = await arm.getDisk(ctx.snapshotResourceGroup, name).catch((error: unknown) => {
      if (isAzureNotFound(error)) return undefined;
      throw error;
    });
    if (existing && existing.provisioningState !== 'Failed') return existing;
    if (existing) await arm.deleteDisk(ctx.snapshotResourceGroup, name);
    const sku = exposureSku(settings, snapshot.attributes?.sku);
    return arm.createDisk(ctx.snapshotResourceGroup, name, {
      location: ctx.location,
      tags: { ...ownedTags(tags, 'exposure'), [snapshotTag]: source.name },
      sku: { name: sku },
      ...(ctx.zone && !sku.endsWith('_ZRS') ? { zones: [ctx.zone] } : {}),
      creationData: { createOption: 'Copy', sourceResourceId: found.id ?? snapshot.id },
    });
  }

  /** The device of the attached disk at `lun` (its partition when the source had one), once it appears. */
  function waitForDevice(lun: number, partition: number | undefined, diskName: string): Promise<string> {
    return waitFor(
      async () => {
        const device = await deviceOfLun(lun, lookup);
        if (!device) return { done: false, observed: `no device at LUN ${lun}` };
        if (partition === undefined) return { done: true, value: device };
        const part = await partitionOf(device, partition, overrides.sysRoot);
        return part
          ? { done: true, value: part }
          : { done: false, observed: `${device} has no partition ${partition} yet` };
      },
      {
        description: `the device of disk ${diskName} (LUN ${lun}) to appear on this host`,
        minDelayMs: 100,
        maxDelayMs: 2000,
        deadlineMs: settings.deviceTimeoutMs ?? 120_000,
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
  }

  /** Resolves when no device is at `lun` any more; TIMEOUT after 10 s. */
  function waitForDeviceGone(lun: number): Promise<void> {
    return waitFor(
      async () => ((await deviceOfLun(lun, lookup)) ? { done: false } : { done: true, value: undefined }),
      {
        description: `the device at LUN ${lun} to go away after the detach`,
        minDelayMs: 100,
        maxDelayMs: 1000,
        deadlineMs: 10_000,
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
  }

  /**
   * Unmount whatever is mounted here from the disk `diskId` when it is attached to this VM (a run killed
   * mid-copy leaves its mount): detaching a mounted disk would leave a dead mount behind.
   */
  async function unmountHere(
    vm: { resourceGroup: string; name: string },
    diskId: string,
    knownLun: string | undefined,
  ): Promise<void> {
    const ctx = await context();
    if (vm.name.toLowerCase() !== ctx.vmName.toLowerCase()) return;
    let lun = knownLun === undefined ? undefined : Number(knownLun);
    if (lun === undefined) {
      const found = await (await client()).getVm(vm.resourceGroup, vm.name);
      lun = found.storageProfile?.dataDisks?.find((d) => sameResource(d.managedDisk?.id, diskId))?.lun;
    }
    const device = lun === undefined ? undefined : await deviceOfLun(lun, lookup);
    if (!device) return;
    for (const mountPoint of await mountPointsOf(device)) await ensureUnmounted(mountPoint);
  }

  const provider: SnapshotProvider = {
    id: 'azure',
    defaultQuiesce: 'fsfreeze',
    supportedQuiesce: {
      fsfreeze: true,
      stop: true,
      none: 'without fsfreeze a managed-disk snapshot is only crash-consistent, and several disks are not snapshotted at one instant',
    },
    permissions: azurePermissions,

    async locate(dataDir: string): Promise<Volume[]> {
      const path = await realDataDir(dataDir);
      // With explicit `disks`, IMDS is optional (it may be blocked); otherwise it maps LUNs to disks.
      const vm = await metadata().catch((error: unknown) => {
        if (overridesOf.length > 0) return undefined;
        throw error;
      });
      const mount = await findMount(path);
      const below = await mountsBelow(path);
      for (const override of overridesOf) {
        if (override.mountPoint === undefined || override.mountPoint === mount.target) continue;
        if (below.includes(override.mountPoint)) continue;
        throw new DssnapError(
          'CONFIG_INVALID',
          `azure setting disks: ${override.diskId}=${override.mountPoint}: ${override.mountPoint} is neither the mount holding DATA_DIR (${mount.target}) nor a filesystem mounted below it`,
          { hint: `Filesystems below DATA_DIR: ${below.join(', ') || 'none'}.`, details: { override } },
        );
      }
      const volumes = [await volumeOf(mount, relative(mount.target, path), true, vm)];
      for (const target of below) volumes.push(await volumeOf(await findMount(target), '', false, vm));
      // Read each disk now: the credential and RBAC are proven before anything changes, the token is
      // warm before the freeze, and the SKU is ARM's.
      const arm = await client();
      for (const volume of volumes) {
        const { resourceGroup, name } = parseResourceId(volume.id, 'disks');
        const disk = await arm.getDisk(resourceGroup, name);
        volume.attributes = { ...volume.attributes, ...(disk.sku?.name ? { sku: disk.sku.name } : {}) };
      }
      const seen = new Set<string>();
      for (const volume of volumes) {
        const key = volume.id.toLowerCase();
        if (seen.has(key)) {
          throw new DssnapError(
            'UNSUPPORTED',
            `Two filesystems of DATA_DIR are on the same managed disk ${volume.attributes?.disk}: a disk snapshot cannot be split between them`,
            { hint: 'Use one filesystem per data disk, or --mode cold.', details: { disk: volume.id } },
          );
        }
        seen.add(key);
      }
      return volumes;
    },

    async createSnapshots(volumes: readonly Volume[], tags: Tags): Promise<Snapshot[]> {
      const ctx = await context();
      const arm = await client();
      const createdAt = new Date().toISOString();
      const stamp = createdAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
      const incremental = !settings.fullSnapshot;
      const plans = volumes.map((volume) => ({
        volume,
        name: resourceName(
          'dssnap',
          parseResourceId(volume.id, 'disks').name,
          `${stamp}-${randomBytes(3).toString('hex')}`,
        ),
      }));
      const snapshotTags = ownedTags(tags, 'snapshot', createdAt);
      // All disks at once, while the core holds their filesystems frozen: one consistent set.
      const results = await Promise.allSettled(
        plans.map(({ volume, name }) =>
          arm.createSnapshot(ctx.snapshotResourceGroup, name, {
            location: ctx.location,
            tags: { ...snapshotTags },
            creationData: { createOption: 'Copy', sourceResourceId: volume.id },
            incremental,
          }),
        ),
      );
      const failure = results.find((result) => result.status === 'rejected');
      if (failure) {
        // Contract: delete what was created before throwing (a 204 for the ones never created).
        await Promise.allSettled(
          plans.map(({ name }) => arm.deleteSnapshot(ctx.snapshotResourceGroup, name)),
        );
        throw (failure as PromiseRejectedResult).reason;
      }
      return plans.map(({ volume, name }, index) => {
        const created = (results[index] as PromiseFulfilledResult<ArmSnapshot>).value;
        return {
          id:
            created.id ??
            formatResourceId({
              subscription: ctx.subscription,
              resourceGroup: ctx.snapshotResourceGroup,
              type: 'snapshots',
              name,
            }),
          provider: 'azure',
          volumeId: volume.id,
          createdAt,
          tags: created.tags ?? snapshotTags,
          attributes: {
            resourceGroup: ctx.snapshotResourceGroup,
            name,
            incremental: String(incremental),
            fsType: volume.fsType,
            ...(volume.attributes?.sku ? { sku: volume.attributes.sku } : {}),
            ...(volume.attributes?.partition ? { partition: volume.attributes.partition } : {}),
          },
        };
      });
    },

    async progress(snapshot: Snapshot): Promise<SnapshotProgress> {
      const arm = await client();
      const { resourceGroup, name } = parseResourceId(snapshot.id, 'snapshots');
      const found = await arm.getSnapshot(resourceGroup, name);
      if (found.provisioningState === 'Failed') {
        return { state: 'failed', reason: `Azure reports snapshot ${name} as Failed` };
      }
      if (found.copyCompletionError) {
        return {
          state: 'failed',
          reason: `the background copy of snapshot ${name} failed: ${found.copyCompletionError.errorMessage} (${found.copyCompletionError.errorCode})`,
        };
      }
      if (found.provisioningState !== 'Succeeded') return { state: 'pending' };
      const percent = found.completionPercent;
      // An incremental snapshot is usable (a disk can be made from it) once its copy reaches 100 %.
      if (percent !== undefined && percent < 100) return { state: 'pending', percent };
      return { state: 'ready' };
    },

    async expose(snapshot: Snapshot, tags: Tags): Promise<Exposure> {
      const ctx = await context();
      const arm = await client();
      const disk = await exposureDisk(arm, ctx, snapshot, tags);
      const diskId = disk.id!;
      const vm = await arm.getVm(ctx.vmResourceGroup, ctx.vmName);
      const dataDisks = vm.storageProfile?.dataDisks ?? [];
      let lun = dataDisks.find((dataDisk) => sameResource(dataDisk.managedDisk?.id, diskId))?.lun;
      if (lun === undefined) {
        if (disk.managedBy && !sameResource(disk.managedBy, vm.id)) {
          throw new AzureError(
            { operation: `attach disk ${disk.name}`, notFound: false, retryable: false },
            `The temporary disk ${disk.name} is attached to another VM (${disk.managedBy})`,
            { hint: "Run 'dssnap cleanup --provider azure' on that VM." },
          );
        }
        lun = freeLun(dataDisks.map((dataDisk) => dataDisk.lun));
        // Host caching is not available for disks of 4 TiB and more.
        const caching = (disk.diskSizeGB ?? 0) >= 4096 ? 'None' : 'ReadOnly';
        await arm.attachDisk(ctx.vmResourceGroup, ctx.vmName, { diskId, lun, caching });
      }
      const partition = snapshot.attributes?.partition ? Number(snapshot.attributes.partition) : undefined;
      const device = await waitForDevice(lun, partition, disk.name ?? diskId);
      return {
        snapshotId: snapshot.id,
        device,
        ...(snapshot.attributes?.fsType ? { fsType: snapshot.attributes.fsType } : {}),
        resources: [diskId],
        attributes: { lun: String(lun), vm: vm.id ?? ctx.vmName, disk: disk.name ?? '' },
      };
    },

    async ensureReleased(exposure: Exposure): Promise<void> {
      const arm = await client();
      for (const diskId of exposure.resources) {
        const { resourceGroup, name } = parseResourceId(diskId, 'disks');
        const disk = await arm.getDisk(resourceGroup, name).catch((error: unknown) => {
          if (isAzureNotFound(error)) return undefined;
          throw error;
        });
        if (!disk) continue;
        requireOwned(disk.tags, 'exposure', `disk ${name}`);
        if (disk.managedBy) {
          const vm = parseResourceId(disk.managedBy, 'virtualMachines');
          await unmountHere(vm, disk.id ?? diskId, exposure.attributes?.lun);
          await arm.detachDisk(vm.resourceGroup, vm.name, disk.id ?? diskId);
          // The next attach may take the same LUN: let its old device go first (best effort).
          const lun = exposure.attributes?.lun;
          if (lun !== undefined) await waitForDeviceGone(Number(lun)).catch(() => undefined);
        }
        await arm.deleteDisk(resourceGroup, name);
      }
    },

    async ensureDeleted(snapshot: Snapshot): Promise<void> {
      const arm = await client();
      const { resourceGroup, name } = parseResourceId(snapshot.id, 'snapshots');
      const found = await arm.getSnapshot(resourceGroup, name).catch((error: unknown) => {
        if (isAzureNotFound(error)) return undefined;
        throw error;
      });
      if (!found) return;
      requireOwned(found.tags, 'snapshot', `snapshot ${name}`);
      await arm.deleteSnapshot(resourceGroup, name);
    },

    async retain(snapshot: Snapshot, tags: Tags): Promise<Snapshot> {
      const arm = await client();
      const { resourceGroup, name } = parseResourceId(snapshot.id, 'snapshots');
      const found = await arm.getSnapshot(resourceGroup, name);
      requireOwned(found.tags, 'snapshot', `snapshot ${name}`);
      // A PATCH replaces the whole tag set: send the merged one.
      const updated = await arm.setSnapshotTags(resourceGroup, name, {
        ...(found.tags ?? {}),
        ...tags,
        [TagKey.retain]: 'true',
      });
      const retained = toSnapshot(updated, resourceGroup);
      return { ...retained, attributes: { ...snapshot.attributes, ...retained.attributes } };
    },

    async list(selector: TagSelector): Promise<Snapshot[]> {
      const ctx = await context();
      const arm = await client();
      const snapshots = (await arm.listSnapshots(ctx.snapshotResourceGroup))
        .filter((found) => found.tags?.[TagKey.role] === 'snapshot' && matchesSelector(found.tags, selector))
        .map((found) => toSnapshot(found, ctx.snapshotResourceGroup));
      return newestFirst(snapshots);
    },

    async orphans(selector: TagSelector): Promise<OwnedResource[]> {
      const ctx = await context();
      const arm = await client();
      const anyRetention = { ...selector, retained: undefined };
      const disks: OwnedResource[] = (await arm.listDisks(ctx.snapshotResourceGroup))
        .filter((disk) => disk.tags?.[TagKey.role] === 'exposure' && matchesSelector(disk.tags, anyRetention))
        .map((disk) => ({
          kind: 'exposure',
          id: disk.id!,
          tags: disk.tags ?? {},
          attributes: {
            snapshot: disk.tags?.[snapshotTag] ?? '',
            ...(disk.managedBy ? { attachedTo: disk.managedBy } : {}),
          },
        }));
      return [...disks, ...orphanSnapshots(await provider.list(anyRetention), selector)];
    },

    doctor: () => azureDoctorChecks(context, client, azurePermissions),

    isNotFound: isAzureNotFound,
    isPermanent: isAzurePermanent,
  };
  return provider;
}

async function resolveContext(
  settings: AzureSettings,
  metadata: () => Promise<InstanceMetadata>,
): Promise<AzureContext> {
  const complete =
    settings.subscription &&
    settings.resourceGroup &&
    settings.vmName &&
    settings.location &&
    settings.zone !== undefined;
  const vm = complete ? undefined : await metadata();
  const cloud = cloudEndpoints(vm?.azEnvironment ?? 'AzurePublicCloud');
  const vmResourceGroup = settings.resourceGroup ?? vm!.resourceGroup;
  return {
    subscription: settings.subscription ?? vm!.subscription,
    vmResourceGroup,
    vmName: settings.vmName ?? vm!.vmName,
    location: (settings.location ?? vm!.location).replace(/\s/g, '').toLowerCase(),
    zone: settings.zone ?? vm!.zone,
    snapshotResourceGroup: settings.snapshotResourceGroup ?? vmResourceGroup,
    endpoint: (settings.endpoint ?? cloud.endpoint).replace(/\/+$/, ''),
    scope: cloud.scope,
  };
}

function toSnapshot(found: ArmSnapshot, resourceGroup: string): Snapshot {
  const tags = found.tags ?? {};
  return {
    id: found.id!,
    provider: 'azure',
    volumeId: found.creationData?.sourceResourceId ?? '',
    createdAt: tags[TagKey.createdAt] ?? found.timeCreated?.toISOString() ?? '',
    tags,
    attributes: {
      resourceGroup,
      name: found.name ?? '',
      incremental: String(found.incremental ?? false),
    },
  };
}

/** Never detach or delete what dssnap did not create: the resource must carry its role tag. */
function requireOwned(
  tags: Record<string, string> | undefined,
  role: 'snapshot' | 'exposure',
  what: string,
): void {
  if (tags?.[TagKey.role] === role) return;
  throw new AzureError(
    { operation: `delete ${what}`, notFound: false, retryable: false },
    `Refusing to delete ${what}: it is not tagged ${TagKey.role}=${role}, so dssnap did not create it`,
    { hint: 'Check the id you passed; dssnap only deletes what it tagged.' },
  );
}

function exposureSku(settings: AzureSettings, sourceSku: string | undefined): string {
  if (settings.exposureDiskSku) return settings.exposureDiskSku;
  return sourceSku && (diskSkus as readonly string[]).includes(sourceSku) ? sourceSku : 'StandardSSD_LRS';
}

/** The smallest LUN (0–63) no data disk uses. */
function freeLun(used: ReadonlyArray<number | undefined>): number {
  const taken = new Set(used);
  for (let lun = 0; lun < 64; lun++) if (!taken.has(lun)) return lun;
  throw new AzureError(
    { operation: 'attach a temporary disk', notFound: false, retryable: false },
    'This VM has no free LUN (64 data disks attached)',
    { hint: 'Detach a data disk, or back up with --mode cold.' },
  );
}

/** An https.Agent trusting the public roots and the certificates in `caFile`. */
async function agentTrusting(caFile: string): Promise<Agent> {
  const pem = await readFile(caFile, 'utf8').catch((error: unknown) => {
    throw new DssnapError(
      'CONFIG_INVALID',
      `Cannot read the caFile setting of the azure provider: ${caFile}`,
      {
        cause: error,
        details: { caFile },
      },
    );
  });
  return new Agent({ ca: [...rootCertificates, pem], keepAlive: true });
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}
