/**
 * The gcp provider: Persistent Disk snapshots of the disk(s) behind DATA_DIR on this Compute Engine VM,
 * read through a temporary disk made from the snapshot, attached here and mounted read-only. A snapshot is
 * crash-consistent by itself, so the core freezes the filesystems around the create calls (default
 * quiesce `fsfreeze`); with several disks it freezes all, snapshots all, thaws — GCP has no atomic
 * multi-disk snapshot by default, so the freeze is what makes the set consistent. Everything it creates
 * is labelled at creation (and carries its exact tags in its description), so a crashed run's
 * leftovers are found by label.
 *
 * Loaded only when the gcp provider is used (the registry imports this module lazily), and the SDK only
 * when a call is made, so `@google-cloud/compute` never slows `dssnap --help` or the other providers.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DssnapError } from '../../src/errors.js';
import { mountPointsOf } from '../../src/host/device-mounts.js';
import { ensureUnmounted, mountsBelow } from '../../src/host/mounts.js';
import { findMount, type MountInfo, realDataDir } from '../../src/provider/find-mount.js';
import { parseProviderSettings } from '../../src/provider/settings.js';
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
import {
  awaitOperation,
  type ComputeApi,
  collect,
  createComputeApi,
  type GcpDisk,
  type GcpInstance,
  type GcpSnapshot,
  operationName,
  type PollOptions,
  sendIdempotent,
} from './client.js';
import { type DeviceLink, googleLinkOf, googleLinkPath, linksOf } from './devices.js';
import { gcpDoctorChecks } from './doctor.js';
import { GcpApiError, isGcpNotFound, isGcpPermanent, operationError } from './errors.js';
import { describeResource, labelFilter, readResource, resourceName, toLabels } from './labels.js';
import { readVmIdentity, type VmIdentity } from './metadata.js';
import { gcpPermissions } from './permissions.js';
import { type ResolvedGcpSettings, resolveSettings, settingsSchema } from './schema.js';

/** Tags the gcp provider adds to what it creates, beyond the core's. */
export const GcpTagKey = {
  /** On a temporary disk: the snapshot it was made from. */
  snapshot: 'dssnap:snapshot',
} as const;

/** The gcp provider, plus the Compute calls it made per method (for reports and tests). */
export interface GcpProvider extends SnapshotProvider {
  apiCalls(): Record<string, number>;
}

export const factory: ProviderFactory = {
  id: 'gcp',
  description: 'GCP Persistent Disk: snapshots of the disk(s) behind DATA_DIR, read through a temporary disk',
  create: async (options) => createGcpProvider(options),
};

/** Why quiesce modes other than fsfreeze cannot be read back through a READ_ONLY attachment. */
const readOnlyRefusal =
  'only fsfreeze leaves the journal clean, and a snapshot whose journal needs replaying cannot be mounted from a disk attached READ_ONLY (the gcp setting attachMode): use fsfreeze, or attachMode READ_WRITE (the default)';

/** Snapshot statuses in which the point in time is fixed: the disk may be written again. */
const pointInTimeFixed = new Set(['UPLOADING', 'READY']);

/**
 * Build the gcp provider. Throws CONFIG_INVALID for bad settings; contacts nothing (metadata server,
 * Compute) until a method needs it.
 */
export function createGcpProvider(options: ProviderOptions): GcpProvider {
  const settings = resolveSettings(parseProviderSettings('gcp', settingsSchema, options.settings));
  exportMetadataHost(settings);
  const { signal } = options;
  const poll: PollOptions = {
    pollIntervalMs: settings.pollIntervalMs,
    timeoutMs: settings.operationTimeoutMs,
    ...(signal ? { signal } : {}),
  };
  let identityPromise: Promise<VmIdentity> | undefined;
  let apiPromise: Promise<ComputeApi> | undefined;
  let loaded: ComputeApi | undefined;

  /** Project, zone and instance: the settings, the metadata server for what they leave out. Not cached on failure. */
  function identity(): Promise<VmIdentity> {
    identityPromise ??= (async () => {
      const { project, zone, instance } = settings;
      if (project && zone && instance) return { project, zone, instance };
      const found = await readVmIdentity({ url: settings.metadataUrl, ...(signal ? { signal } : {}) });
      return {
        project: project ?? found.project,
        zone: zone ?? found.zone,
        instance: instance ?? found.instance,
      };
    })().catch((error: unknown) => {
      identityPromise = undefined;
      throw error;
    });
    return identityPromise;
  }

  function api(): Promise<ComputeApi> {
    apiPromise ??= createComputeApi(settings).then((made) => {
      loaded = made;
      return made;
    });
    return apiPromise;
  }

  /**
   * This VM, then the API. In this order, not at once: loading the SDK holds the event loop for seconds
   * (an 11 MB API description is parsed), which must not eat the metadata server's answer time.
   */
  async function vmAndApi(): Promise<[VmIdentity, ComputeApi]> {
    const me = await identity();
    return [me, await api()];
  }

  async function getSnapshot(name: string): Promise<GcpSnapshot> {
    const [me, compute] = await vmAndApi();
    const [found] = await compute.call('snapshots.get', () =>
      compute.snapshots.get({ project: me.project, snapshot: name }, compute.callOptions),
    );
    return found;
  }

  async function findDisk(name: string): Promise<GcpDisk | undefined> {
    const [me, compute] = await vmAndApi();
    try {
      const [found] = await compute.call('disks.get', () =>
        compute.disks.get({ project: me.project, zone: me.zone, disk: name }, compute.callOptions),
      );
      return found;
    } catch (error) {
      if (isGcpNotFound(error)) return undefined;
      throw error;
    }
  }

  async function getInstance(name?: string): Promise<GcpInstance> {
    const [me, compute] = await vmAndApi();
    const [found] = await compute.call('instances.get', () =>
      compute.instances.get(
        { project: me.project, zone: me.zone, instance: name ?? me.instance },
        compute.callOptions,
      ),
    );
    return found;
  }

  /** Snapshots labelled by dssnap, narrowed on the server by `labels`, then exactly by the selector. */
  async function labelledSnapshots(labels: Tags): Promise<GcpSnapshot[]> {
    const [me, compute] = await vmAndApi();
    return collect(compute, 'snapshots.list', () =>
      compute.snapshots.listAsync(
        { project: me.project, filter: labelFilter({ [TagKey.role]: 'snapshot', ...labels }) },
        compute.callOptions,
      ),
    );
  }

  /** Temporary disks labelled by dssnap in this VM's zone. */
  async function exposureDisks(labels: Tags): Promise<GcpDisk[]> {
    const [me, compute] = await vmAndApi();
    return collect(compute, 'disks.list', () =>
      compute.disks.listAsync(
        { project: me.project, zone: me.zone, filter: labelFilter({ [TagKey.role]: 'exposure', ...labels }) },
        compute.callOptions,
      ),
    );
  }

  /** Delete a snapshot by name and wait for it to be gone. Idempotent: not found is success. */
  async function deleteSnapshotNamed(name: string): Promise<void> {
    const [me, compute] = await vmAndApi();
    try {
      const [operation] = await compute.call('snapshots.delete', () =>
        compute.snapshots.delete(
          { project: me.project, snapshot: name, requestId: randomUUID() },
          compute.callOptions,
        ),
      );
      await awaitOperation(
        compute,
        { project: me.project, name: operationName(operation) },
        'snapshots.delete',
        poll,
      );
    } catch (error) {
      if (!isGcpNotFound(error)) throw error;
    }
  }

  /** Locate one mounted filesystem's disk: an explicit override, else its `google-*` by-id link. */
  async function identifyMount(
    mount: MountInfo,
    isPrimary: boolean,
    instance: GcpInstance,
  ): Promise<{ disk: string; deviceName: string; partition?: number; mode: string }> {
    const override =
      settings.disks.find((o) => o.mountPoint === mount.target) ??
      (isPrimary ? settings.disks.find((o) => o.mountPoint === undefined) : undefined);
    const link: DeviceLink | undefined = await googleLinkOf(mount.device, settings.deviceDir);
    const attached = instance.disks ?? [];
    const found = override
      ? attached.find((d) => diskNameOf(d.source) === override.disk)
      : link
        ? attached.find((d) => d.deviceName === link.deviceName)
        : undefined;
    if (found?.source && found.deviceName) {
      return {
        disk: diskNameOf(found.source),
        deviceName: found.deviceName,
        ...(link?.partition === undefined ? {} : { partition: link.partition }),
        mode: found.mode ?? 'READ_WRITE',
      };
    }
    const what = override
      ? `disk ${override.disk} is not attached to this VM (${instance.name})`
      : link
        ? `${settings.deviceDir}/google-${link.deviceName} is not a disk attached to this VM (${instance.name})`
        : `${mount.device} is not a Compute Engine persistent disk (no ${settings.deviceDir}/google-* link points at it)`;
    throw new DssnapError('UNSUPPORTED', `${mount.target}: ${what}`, {
      hint: `dssnap finds persistent disks by their ${settings.deviceDir}/google-<device name> link (LVM or RAID on top of disks is not supported). Name the disk explicitly with the provider setting disks: ['disk-name'] (or 'disk-name=${mount.target}' for a disk mounted below DATA_DIR).`,
      details: { mountPoint: mount.target, device: mount.device, instance: instance.name },
    });
  }

  /** Unmount every mount of the temporary disk's device(s) on this host (a run killed mid-copy leaves one). */
  async function unmountHere(deviceName: string): Promise<void> {
    for (const path of await linksOf(settings.deviceDir, deviceName)) {
      for (const mountPoint of await mountPointsOf(path)) await ensureUnmounted(mountPoint);
    }
  }

  /** Detach (after unmounting it here) and delete one temporary disk. Idempotent: gone is success. */
  async function releaseDisk(name: string): Promise<void> {
    const [me, compute] = await vmAndApi();
    const disk = await findDisk(name);
    if (!disk || disk.status === 'DELETING') return;
    if (disk.labels?.['dssnap-role'] !== 'exposure') {
      throw new DssnapError(
        'PROVIDER_ERROR',
        `Refusing to detach or delete disk ${name}: it is not a temporary disk created by dssnap (no dssnap-role=exposure label)`,
        { details: { disk: name } },
      );
    }
    for (const user of disk.users ?? []) {
      const instanceName = user.split('/').pop()!;
      const instance = await getInstance(instanceName).catch((error: unknown) => {
        if (isGcpNotFound(error)) return undefined;
        throw error;
      });
      const attached = instance?.disks?.find((d) => diskNameOf(d.source) === name);
      if (!attached?.deviceName) continue;
      if (instanceName === me.instance) await unmountHere(attached.deviceName);
      try {
        const [operation] = await compute.call('instances.detachDisk', () =>
          compute.instances.detachDisk(
            {
              project: me.project,
              zone: me.zone,
              instance: instanceName,
              deviceName: attached.deviceName!,
              requestId: randomUUID(),
            },
            compute.callOptions,
          ),
        );
        await awaitOperation(
          compute,
          { project: me.project, zone: me.zone, name: operationName(operation) },
          'instances.detachDisk',
          poll,
        );
      } catch (error) {
        // Detached meanwhile ("No attached disk found"): the delete below settles it.
        if (
          !(error instanceof GcpApiError && /No attached disk/i.test(error.message)) &&
          !isGcpNotFound(error)
        )
          throw error;
      }
    }
    try {
      const [operation] = await compute.call('disks.delete', () =>
        compute.disks.delete(
          { project: me.project, zone: me.zone, disk: name, requestId: randomUUID() },
          compute.callOptions,
        ),
      );
      await awaitOperation(
        compute,
        { project: me.project, zone: me.zone, name: operationName(operation) },
        'disks.delete',
        poll,
      );
    } catch (error) {
      if (!isGcpNotFound(error)) throw error;
    }
  }

  /**
   * The createSnapshot operation's error, when it ended with one (explains a missing or FAILED
   * snapshot). With `wait`, waits for the operation to finish first (a FAILED snapshot's operation
   * ends with its reason); otherwise looks once.
   */
  async function snapshotOperationError(snapshot: Snapshot, wait = false): Promise<GcpApiError | undefined> {
    const name = snapshot.attributes?.operation;
    const zone = snapshot.attributes?.zone;
    if (!name || !zone) return undefined;
    const [me, compute] = await vmAndApi();
    try {
      if (wait) {
        await awaitOperation(compute, { project: me.project, zone, name }, 'disks.createSnapshot', {
          ...poll,
          timeoutMs: Math.min(poll.timeoutMs, 60_000),
        });
        return undefined;
      }
      const [operation] = await compute.call('zoneOperations.get', () =>
        compute.zoneOperations.get({ project: me.project, zone, operation: name }, compute.callOptions),
      );
      const errors = operation.error?.errors ?? [];
      return operation.status === 'DONE' && errors.length > 0
        ? operationError('disks.createSnapshot', errors, operation.httpErrorStatusCode)
        : undefined;
    } catch (error) {
      return error instanceof GcpApiError && error.method === 'disks.createSnapshot' ? error : undefined;
    }
  }

  /**
   * True once Google reports the snapshot UPLOADING or READY (its point in time is fixed); throws the
   * operation's error when it FAILED or vanished with one.
   */
  async function pointInTimeIsFixed(snapshot: Snapshot): Promise<boolean> {
    let found: GcpSnapshot;
    try {
      found = await getSnapshot(snapshot.id);
    } catch (error) {
      // A poll is read-only: a throttled or failed one is simply tried again.
      if (!isGcpPermanent(error)) return false;
      if (!isGcpNotFound(error)) throw error;
      const failed = await snapshotOperationError(snapshot);
      if (failed) throw failed;
      return false;
    }
    if (found.status === 'FAILED') {
      throw (
        (await snapshotOperationError(snapshot, true)) ??
        new DssnapError('PROVIDER_ERROR', `GCP reports snapshot ${snapshot.id} FAILED`)
      );
    }
    return pointInTimeFixed.has(found.status ?? '');
  }

  const permissions = gcpPermissions(settings.attachMode);
  const provider: GcpProvider = {
    id: 'gcp',
    defaultQuiesce: 'fsfreeze',
    supportedQuiesce: {
      fsfreeze: true,
      ...(settings.attachMode === 'READ_WRITE'
        ? { stop: true, none: true }
        : {
            stop: readOnlyRefusal,
            none: readOnlyRefusal,
          }),
    },
    permissions,

    apiCalls: () => loaded?.callCounts() ?? {},

    async locate(dataDir: string): Promise<Volume[]> {
      const path = await realDataDir(dataDir);
      const me = await identity();
      const primary = await findMount(path);
      if (!primary.device.startsWith('/dev/')) {
        throw new DssnapError(
          'UNSUPPORTED',
          `DATA_DIR '${dataDir}' is on ${primary.fsType} (${primary.source || 'no device'} at ${primary.target}), not on a persistent disk`,
          {
            hint: 'Put DATA_DIR on a persistent disk of this VM, or use --mode cold.',
            details: { dataDir, fsType: primary.fsType },
          },
        );
      }
      // Filesystems mounted below DATA_DIR are snapshotted with it; non-block ones (tmpfs…) cannot be,
      // and the core's preflight refuses them.
      const nested = (await Promise.all((await mountsBelow(path)).map((target) => findMount(target)))).filter(
        (m) => m.device.startsWith('/dev/'),
      );
      const mounts = [primary, ...nested];
      for (const override of settings.disks) {
        if (override.mountPoint && !mounts.some((m) => m.target === override.mountPoint)) {
          throw new DssnapError(
            'USAGE',
            `gcp setting disks: ${override.disk}=${override.mountPoint}: ${override.mountPoint} is neither the mount holding DATA_DIR (${primary.target}) nor a filesystem mounted below it`,
            { hint: `Mounts found: ${mounts.map((m) => m.target).join(', ')}.` },
          );
        }
      }
      const instance = await getInstance();
      const volumes: Volume[] = [];
      for (const [index, mount] of mounts.entries()) {
        const found = await identifyMount(mount, index === 0, instance);
        const id = `projects/${me.project}/zones/${me.zone}/disks/${found.disk}`;
        if (volumes.some((v) => v.id === id)) {
          throw new DssnapError(
            'UNSUPPORTED',
            `${mount.target} and another filesystem of DATA_DIR are on the same disk ${found.disk}`,
            {
              hint: 'dssnap snapshots one filesystem per disk: use one partition per disk, or --mode cold.',
            },
          );
        }
        if (settings.attachMode === 'READ_ONLY' && mount.fsType !== 'ext4') {
          throw new DssnapError(
            'UNSUPPORTED',
            `${mount.target} is ${mount.fsType}: a snapshot of it cannot be mounted from a disk attached READ_ONLY (the gcp setting attachMode)`,
            {
              hint: 'XFS always recovers its log when mounted, even from a frozen snapshot, and needs a writable device for that: remove attachMode (READ_WRITE, the default; the disk is still mounted read-only).',
              details: { mountPoint: mount.target, fsType: mount.fsType },
            },
          );
        }
        const inside = index === 0 ? relative(mount.target, path) : '';
        volumes.push({
          id,
          mountPoint: mount.target,
          relativePath: join(mount.fsRoot.replace(/^\/+/, ''), inside).replace(/^\.$/, ''),
          fsType: mount.fsType,
          device: mount.device,
          attributes: {
            project: me.project,
            zone: me.zone,
            instance: me.instance,
            disk: found.disk,
            deviceName: found.deviceName,
            mode: found.mode,
            ...(found.partition === undefined ? {} : { partition: String(found.partition) }),
          },
        });
      }
      return volumes;
    },

    async createSnapshots(volumes: readonly Volume[], tags: Tags): Promise<Snapshot[]> {
      const [me, compute] = await vmAndApi();
      const createdAt = new Date().toISOString();
      const snapshotTags = ownedTags(tags, 'snapshot', createdAt);
      const runId = tags[TagKey.runId] ?? createdAt;
      const planned = volumes.map((volume) => {
        const disk = volume.attributes?.disk ?? diskNameOf(volume.id);
        const attributes = {
          project: me.project,
          zone: me.zone,
          disk,
          fsType: volume.fsType,
          mountPoint: volume.mountPoint,
          ...(volume.attributes?.partition ? { partition: volume.attributes.partition } : {}),
        };
        return {
          volume,
          disk,
          attributes,
          name: resourceName([runId, disk], `${runId}/${volume.id}`),
          requestId: randomUUID(),
        };
      });
      const made: Snapshot[] = [];
      try {
        // Every disk's snapshot is started at once, while the core holds every filesystem frozen.
        const started = await Promise.allSettled(
          planned.map(async (plan) => {
            const [operation] = await sendIdempotent(
              () =>
                compute.call('disks.createSnapshot', () =>
                  compute.disks.createSnapshot(
                    {
                      project: me.project,
                      zone: me.zone,
                      disk: plan.disk,
                      requestId: plan.requestId,
                      snapshotResource: {
                        name: plan.name,
                        description: describeResource(snapshotTags, plan.attributes),
                        labels: toLabels(snapshotTags),
                        ...(settings.snapshotLocation
                          ? { storageLocations: [settings.snapshotLocation] }
                          : {}),
                      },
                    },
                    compute.callOptions,
                  ),
                ),
              `GCP to accept the snapshot of disk ${plan.disk}`,
              { ...poll, timeoutMs: Math.min(poll.timeoutMs, 60_000) },
            );
            made.push({
              id: plan.name,
              provider: 'gcp',
              volumeId: plan.volume.id,
              createdAt,
              tags: snapshotTags,
              attributes: { ...plan.attributes, operation: operationName(operation) },
            });
          }),
        );
        const failure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
        if (failure) throw failure.reason;
        // The point in time is fixed once Google reports the snapshot UPLOADING (or READY): only then
        // may the core thaw the filesystems.
        const fixed = new Set<string>();
        await waitFor(
          async () => {
            await Promise.all(
              made
                .filter((snapshot) => !fixed.has(snapshot.id))
                .map(async (snapshot) => {
                  if (await pointInTimeIsFixed(snapshot)) fixed.add(snapshot.id);
                }),
            );
            return fixed.size === made.length
              ? { done: true, value: undefined }
              : { done: false, observed: { fixed: [...fixed] } };
          },
          {
            description: `GCP to fix the point in time of snapshot(s) ${made.map((s) => s.id).join(', ')}`,
            minDelayMs: Math.min(settings.pollIntervalMs, 100),
            maxDelayMs: 1_000,
            deadlineMs: Math.min(poll.timeoutMs, 120_000),
            ...(signal ? { signal } : {}),
          },
        );
        return planned.map((plan) => made.find((s) => s.id === plan.name)!);
      } catch (error) {
        // Contract: delete what this call created — by name, so that a snapshot whose answer was lost
        // (accepted by Google, never returned) goes too. One still CREATING refuses: `cleanup` finds it.
        for (const plan of planned) await deleteSnapshotNamed(plan.name).catch(() => undefined);
        throw error;
      }
    },

    async progress(snapshot: Snapshot): Promise<SnapshotProgress> {
      let found: GcpSnapshot;
      try {
        found = await getSnapshot(snapshot.id);
      } catch (error) {
        const failed = isGcpNotFound(error) ? await snapshotOperationError(snapshot) : undefined;
        if (failed) return { state: 'failed', reason: failed.message };
        throw error;
      }
      switch (found.status) {
        case 'READY':
          return { state: 'ready' };
        case 'FAILED':
          return {
            state: 'failed',
            reason:
              (await snapshotOperationError(snapshot, true))?.message ??
              `GCP reports snapshot ${snapshot.id} FAILED`,
          };
        case 'DELETING':
          return { state: 'failed', reason: `snapshot ${snapshot.id} is being deleted` };
        default:
          return { state: 'pending' };
      }
    },

    async expose(snapshot: Snapshot, tags: Tags): Promise<Exposure> {
      const [me, compute] = await vmAndApi();
      const found = await getSnapshot(snapshot.id);
      if (found.status !== 'READY') {
        throw new DssnapError(
          'PROVIDER_ERROR',
          `Snapshot ${snapshot.id} is not ready (${found.status ?? 'unknown status'})`,
          {
            details: { snapshotId: snapshot.id, status: found.status },
          },
        );
      }
      const recorded = readResource(found.description, found.labels);
      const attributes = { ...recorded.attributes, ...snapshot.attributes };
      const partition = attributes.partition ? Number(attributes.partition) : undefined;
      const runId = tags[TagKey.runId] ?? snapshot.tags[TagKey.runId] ?? '';
      // A name of its own per (snapshot, run): a retried expose finds the disk the first try made.
      const name = resourceName(['x', runId], `${snapshot.id}/${runId}/exposure`);
      const diskTags = {
        ...ownedTags(tags, 'exposure', new Date().toISOString()),
        [GcpTagKey.snapshot]: snapshot.id,
      };
      const zoneRef = { project: me.project, zone: me.zone };
      try {
        if (!(await findDisk(name))) {
          try {
            const [operation] = await compute.call('disks.insert', () =>
              compute.disks.insert(
                {
                  ...zoneRef,
                  requestId: randomUUID(),
                  diskResource: {
                    name,
                    sourceSnapshot: `projects/${me.project}/global/snapshots/${snapshot.id}`,
                    description: describeResource(diskTags),
                    labels: toLabels(diskTags),
                    ...(settings.diskType ? { type: `zones/${me.zone}/diskTypes/${settings.diskType}` } : {}),
                  },
                },
                compute.callOptions,
              ),
            );
            await awaitOperation(
              compute,
              { ...zoneRef, name: operationName(operation) },
              'disks.insert',
              poll,
            );
          } catch (error) {
            if (!(error instanceof GcpApiError && error.reasons.includes('alreadyExists'))) throw error;
          }
        }
        const instance = await getInstance();
        if (!instance.disks?.some((d) => d.deviceName === name)) {
          const [operation] = await compute.call('instances.attachDisk', () =>
            compute.instances.attachDisk(
              {
                ...zoneRef,
                instance: me.instance,
                requestId: randomUUID(),
                attachedDiskResource: {
                  source: `projects/${me.project}/zones/${me.zone}/disks/${name}`,
                  deviceName: name,
                  mode: settings.attachMode,
                  autoDelete: false,
                },
              },
              compute.callOptions,
            ),
          );
          await awaitOperation(
            compute,
            { ...zoneRef, name: operationName(operation) },
            'instances.attachDisk',
            poll,
          );
        }
        const link = googleLinkPath(settings.deviceDir, {
          deviceName: name,
          ...(partition === undefined ? {} : { partition }),
        });
        await waitFor(
          async () =>
            existsSync(link) ? { done: true, value: link } : { done: false, observed: 'no device yet' },
          {
            description: `the device of disk ${name} to appear on this VM (${link})`,
            minDelayMs: Math.min(settings.pollIntervalMs, 200),
            maxDelayMs: 2_000,
            deadlineMs: poll.timeoutMs,
            ...(signal ? { signal } : {}),
          },
        );
        return {
          snapshotId: snapshot.id,
          device: link,
          ...(attributes.fsType ? { fsType: attributes.fsType } : {}),
          resources: [name],
          attributes: { disk: name, deviceName: name, instance: me.instance, zone: me.zone },
        };
      } catch (error) {
        // Undo what this call created (the disk has a name of its own: found whatever answer was lost).
        await releaseDisk(name).catch(() => undefined);
        throw error;
      }
    },

    async ensureReleased(exposure: Exposure): Promise<void> {
      for (const name of exposure.resources) await releaseDisk(name);
    },

    async ensureDeleted(snapshot: Snapshot): Promise<void> {
      let found: GcpSnapshot;
      try {
        found = await getSnapshot(snapshot.id);
      } catch (error) {
        if (isGcpNotFound(error)) return;
        throw error;
      }
      // Guard: never delete a snapshot dssnap did not create, whatever name it was handed.
      if (found.labels?.['dssnap-run-id'] === undefined) {
        throw new DssnapError(
          'PROVIDER_ERROR',
          `Refusing to delete snapshot ${snapshot.id}: it was not created by dssnap (no dssnap-run-id label)`,
          { details: { snapshotId: snapshot.id } },
        );
      }
      if (found.status === 'DELETING') return;
      await deleteSnapshotNamed(snapshot.id);
    },

    async retain(snapshot: Snapshot, tags: Tags): Promise<Snapshot> {
      const [me, compute] = await vmAndApi();
      const found = await getSnapshot(snapshot.id);
      const labels = { ...found.labels, ...toLabels({ ...tags, [TagKey.retain]: 'true' }) };
      const [operation] = await compute.call('snapshots.setLabels', () =>
        compute.snapshots.setLabels(
          {
            project: me.project,
            resource: snapshot.id,
            globalSetLabelsRequestResource: { labels, labelFingerprint: found.labelFingerprint ?? '' },
          },
          compute.callOptions,
        ),
      );
      await awaitOperation(
        compute,
        { project: me.project, name: operationName(operation) },
        'snapshots.setLabels',
        poll,
      );
      const current = toSnapshot({ ...found, labels });
      return { ...current, attributes: { ...snapshot.attributes, ...current.attributes } };
    },

    async list(selector: TagSelector): Promise<Snapshot[]> {
      const snapshots = (await labelledSnapshots(serverSide(selector)))
        .map(toSnapshot)
        .filter((s) => s.tags[TagKey.role] === 'snapshot' && matchesSelector(s.tags, selector));
      return newestFirst(snapshots);
    },

    async orphans(selector: TagSelector): Promise<OwnedResource[]> {
      const anyRetention = { ...selector, retained: undefined };
      const labels = serverSide(anyRetention);
      const disks: OwnedResource[] = (await exposureDisks(labels))
        .filter((d) => d.status !== 'DELETING')
        .map((disk) => ({ disk, tags: readResource(disk.description, disk.labels).tags }))
        .filter(({ tags }) => matchesSelector(tags, anyRetention))
        .map(({ disk, tags }) => ({
          kind: 'exposure' as const,
          id: disk.name!,
          tags,
          attributes: {
            status: disk.status ?? '',
            snapshotId: tags[GcpTagKey.snapshot] ?? '',
            users: (disk.users ?? []).map((u) => u.split('/').pop()).join(','),
          },
        }));
      return [...disks, ...orphanSnapshots((await labelledSnapshots(labels)).map(toSnapshot), selector)];
    },

    async doctor() {
      return gcpDoctorChecks({ settings, identity, api, permissions });
    },

    isNotFound: isGcpNotFound,
    isPermanent: isGcpPermanent,
  };
  return provider;
}

export type { ResolvedGcpSettings };

/** `https://www.googleapis.com/compute/v1/projects/p/zones/z/disks/d` (or a relative path) → `d`. */
export function diskNameOf(source: string | null | undefined): string {
  return (source ?? '').split('/').pop() ?? '';
}

/** The labels a selector narrows on the server; the exact match is done on the tags afterwards. */
function serverSide(selector: TagSelector): Tags {
  return {
    ...(selector.runId !== undefined ? { [TagKey.runId]: selector.runId } : {}),
    ...(selector.retained === true ? { [TagKey.retain]: 'true' } : {}),
  };
}

function toSnapshot(snapshot: GcpSnapshot): Snapshot {
  const { tags, attributes } = readResource(snapshot.description, snapshot.labels);
  const created = snapshot.creationTimestamp ? new Date(snapshot.creationTimestamp).toISOString() : '';
  return {
    id: snapshot.name ?? '',
    provider: 'gcp',
    volumeId:
      attributes.project && attributes.zone && attributes.disk
        ? `projects/${attributes.project}/zones/${attributes.zone}/disks/${attributes.disk}`
        : (snapshot.sourceDisk ?? '').replace(/^https:\/\/[^/]+\/compute\/v1\//, ''),
    createdAt: tags[TagKey.createdAt] ?? created,
    tags,
    attributes: {
      ...attributes,
      status: snapshot.status ?? '',
      ...(snapshot.diskSizeGb ? { diskSizeGb: String(snapshot.diskSizeGb) } : {}),
      ...(snapshot.storageLocations?.length ? { storageLocations: snapshot.storageLocations.join(',') } : {}),
    },
  };
}

/**
 * The metadata server chosen by the `metadataEndpoint` setting is also the one Google's auth library
 * must ask for the VM's token: it reads GCE_METADATA_HOST, so set that when the environment does not.
 */
function exportMetadataHost(settings: ResolvedGcpSettings): void {
  if (!settings.metadataFromSettings || process.env.GCE_METADATA_HOST || process.env.GCE_METADATA_IP) return;
  process.env.GCE_METADATA_HOST = new URL(settings.metadataUrl).host;
}
