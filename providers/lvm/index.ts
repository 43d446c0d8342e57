/**
 * The LVM provider: DATA_DIR on an LVM logical volume (and any other LV mounted below it). A classic
 * snapshot (`lvcreate -s --extents N`, copy-on-write space sized by the `snapshotSize` policy) or, for
 * a thin LV, a thin snapshot (no size; activated with `-K` to be read). `lvcreate -s` suspends the
 * origin and freezes its filesystem by itself, so the default quiesce is `none`. Snapshots carry
 * dssnap's tags as LVM tags (tags.ts): `list`, `orphans` and `cleanup` find them with `lvs`. The
 * exposure is the snapshot LV's device, which the core mounts read-only.
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { release } from 'node:os';
import { join, relative } from 'node:path';
import { z } from 'zod';
import { DssnapError, isDssnapError } from '../../src/errors.js';
import { findTool, run } from '../../src/host/exec.js';
import { whileFrozen } from '../../src/host/fsfreeze.js';
import { mountsBelow } from '../../src/host/mounts.js';
import { silentLogger } from '../../src/log.js';
import { findMount, type MountInfo, realDataDir } from '../../src/provider/find-mount.js';
import { parseProviderSettings } from '../../src/provider/settings.js';
import { isRetained, matchesSelector, newestFirst, ownedTags } from '../../src/provider/tags.js';
import {
  type Exposure,
  type OwnedResource,
  type ProviderCheck,
  type ProviderFactory,
  type ProviderOptions,
  type QuiesceMode,
  type Snapshot,
  type SnapshotProgress,
  type SnapshotProvider,
  TagKey,
  type TagSelector,
  type Tags,
  type Volume,
} from '../../src/provider/types.js';
import { supportsNestedFreeze } from './kernel.js';
import {
  changeTags,
  createSnapshotLv,
  deviceMapperMajor,
  deviceMapperTargets,
  findLv,
  hasDeviceMapper,
  isActive,
  isInvalidSnapshot,
  isLvmBusy,
  isLvmNotFound,
  isSnapshot,
  isThin,
  type LogicalVolume,
  listLvs,
  listVgs,
  removeLv,
  requireDeviceMapper,
  requireLvmTools,
  setActive,
} from './lvm-tools.js';
import { formatSize, parseSnapshotSize, planSnapshotExtents, type VgSpace } from './size.js';
import { decodeTags, encodeTag, encodeTags } from './tags.js';

const settingsSchema = z.strictObject({
  /** Copy-on-write size of classic snapshots: `20%` of the origin or a size (`2G`). Default: see size.ts. */
  snapshotSize: z
    .string()
    .refine(
      (value) => parseSnapshotSize(value) !== undefined,
      "must be a share of the origin such as '20%' or a size with a unit such as '512M' or '2G'",
    )
    .optional(),
  /** Whether the kernel can snapshot a frozen filesystem; default: Linux >= 6.8 (kernel.ts). */
  nestedFreeze: z.boolean().optional(),
  /** Longest the filesystems of a multi-LV set stay frozen around the snapshots; default 10 000 ms. */
  maxFreezeMs: z.number().int().positive().optional(),
});

export type LvmSettings = z.infer<typeof settingsSchema>;

export const factory: ProviderFactory = {
  id: 'lvm',
  description: 'lvm: classic or thin snapshots of the logical volume(s) holding DATA_DIR',
  create: async (options) => createLvmProvider(options),
};

/** Filesystems whose kernel driver implements freeze (needed for a consistent multi-LV set). */
const freezable = new Set(['ext3', 'ext4', 'xfs', 'jfs', 'reiserfs', 'f2fs', 'nilfs2']);

/** Build an LVM provider. Throws CONFIG_INVALID for bad settings; touches nothing until called. */
export function createLvmProvider(options: ProviderOptions): SnapshotProvider {
  const settings = parseProviderSettings('lvm', settingsSchema, options.settings);
  const sizeSpec = settings.snapshotSize === undefined ? undefined : parseSnapshotSize(settings.snapshotSize);
  const nestedFreeze = settings.nestedFreeze ?? supportsNestedFreeze();
  /** The quiesce mode preflight announced (checkQuiesce); a multi-LV set without nested freeze needs `stop`. */
  let plannedQuiesce: QuiesceMode | undefined;

  /** The LV behind a mounted filesystem, or UNSUPPORTED saying which provider fits instead. */
  async function lvOfMount(mount: MountInfo, what: string): Promise<LogicalVolume> {
    const notLvm = (why: string): DssnapError =>
      new DssnapError('UNSUPPORTED', `${what} is not on an LVM logical volume: ${why}`, {
        hint:
          mount.fsType === 'btrfs'
            ? 'It is on btrfs: use --provider btrfs (DATA_DIR as its own subvolume), or --mode cold.'
            : `Use --mode cold (stop DSS, copy, start DSS), or move DATA_DIR onto an LVM logical volume (or btrfs subvolume) to snapshot it.`,
        details: { device: mount.device, fsType: mount.fsType, mountPoint: mount.target },
      });
    const info = await stat(mount.device).catch(() => undefined);
    if (!info?.isBlockDevice()) {
      throw notLvm(
        `it is a ${mount.fsType} filesystem from '${mount.source || 'no device'}' mounted at ${mount.target}`,
      );
    }
    const major = Math.floor(info.rdev / 256) & 0xfff;
    const minor = (info.rdev & 0xff) | ((info.rdev >> 12) & 0xfff00);
    const dm = deviceMapperMajor();
    if (dm === undefined || major !== dm) {
      throw notLvm(
        `its ${mount.fsType} filesystem at ${mount.target} is on ${mount.device}${dm === undefined ? ' and this kernel has no device-mapper' : ''}`,
      );
    }
    requireLvmTools();
    const lv = (await listLvs()).find((candidate) => candidate.major === major && candidate.minor === minor);
    if (!lv) throw notLvm(`${mount.device} is a device-mapper device but not a logical volume LVM knows`);
    if (isSnapshot(lv)) {
      throw new DssnapError('UNSUPPORTED', `${what} is on ${lv.fullName}, itself an LVM snapshot`, {
        hint: 'Back up the origin LV, not a snapshot of it.',
        details: { lv: lv.fullName },
      });
    }
    return lv;
  }

  function volumeOf(lv: LogicalVolume, mount: MountInfo, relativePath: string): Volume {
    return {
      id: lv.fullName,
      mountPoint: mount.target,
      relativePath,
      fsType: mount.fsType,
      device: lv.path || lv.dmPath,
      attributes: {
        vg: lv.vg,
        lv: lv.name,
        thin: String(isThin(lv)),
        ...(lv.pool ? { pool: lv.pool } : {}),
        sizeBytes: String(lv.sizeBytes),
      },
    };
  }

  /** The extents of each classic snapshot of `lvs` (one `vgs`), or NO_SPACE naming the shortfall. */
  async function planClassic(
    lvs: readonly LogicalVolume[],
  ): Promise<{ extents: Map<string, number>; space: Map<string, VgSpace> }> {
    const classic = lvs.filter((lv) => !isThin(lv));
    if (classic.length === 0) return { extents: new Map(), space: new Map() };
    const vgs = await listVgs([...new Set(classic.map((lv) => lv.vg))]);
    const space = new Map<string, VgSpace>(
      vgs.map((vg) => [vg.name, { freeBytes: vg.freeBytes, extentBytes: vg.extentBytes }]),
    );
    const extents = planSnapshotExtents(
      classic.map((lv) => ({ id: lv.fullName, vg: lv.vg, sizeBytes: lv.sizeBytes })),
      space,
      sizeSpec,
    );
    return { extents, space };
  }

  /** The LVs of `volumes` as LVM sees them now (one `lvs` listing every LV); NOT_FOUND when one is gone. */
  function originsOf(volumes: readonly Volume[], all: readonly LogicalVolume[]): LogicalVolume[] {
    const origins: LogicalVolume[] = [];
    for (const volume of volumes) {
      const lv = all.find((candidate) => candidate.fullName === volume.id);
      if (!lv) {
        throw new DssnapError('NOT_FOUND', `The logical volume ${volume.id} does not exist`, {
          details: { volumeId: volume.id },
        });
      }
      origins.push(lv);
    }
    return origins;
  }

  function consistencyProblem(
    volumes: readonly Volume[],
    quiesce: QuiesceMode | undefined,
  ): DssnapError | undefined {
    if (quiesce === 'fsfreeze' && !nestedFreeze) {
      return new DssnapError(
        'UNSUPPORTED',
        `--quiesce fsfreeze cannot be used with LVM on this kernel (Linux ${release()} < 6.8): lvcreate -s cannot snapshot a frozen filesystem (device-mapper's own freeze fails with EBUSY and leaves a half-made snapshot)`,
        {
          hint:
            volumes.length > 1
              ? 'Use --quiesce stop (DSS is stopped for the snapshot instant only): DATA_DIR spans several LVs.'
              : 'Use --quiesce none (the default: lvcreate freezes the filesystem itself for the snapshot instant) or --quiesce stop.',
          details: { volumes: volumes.map((v) => v.id), quiesce },
        },
      );
    }
    if (volumes.length < 2 || nestedFreeze || (quiesce ?? 'none') !== 'none') return undefined;
    return new DssnapError(
      'UNSUPPORTED',
      `DATA_DIR spans ${volumes.length} logical volumes (${volumes.map((v) => v.id).join(', ')}): one consistent snapshot set needs all their filesystems frozen across every lvcreate, and this kernel cannot snapshot a frozen filesystem (Linux ${release()} < 6.8: device-mapper's own freeze fails with EBUSY)`,
      {
        hint: 'Use --quiesce stop (DSS is stopped for the snapshot instant only), move DATA_DIR onto one LV, or run Linux 6.8 or later.',
        details: { volumes: volumes.map((v) => v.id) },
      },
    );
  }

  async function requireSnapshotLv(snapshot: Snapshot): Promise<LogicalVolume> {
    const lv = await findLv(snapshot.id);
    if (!lv) {
      throw new DssnapError('NOT_FOUND', `The LVM snapshot ${snapshot.id} does not exist`, {
        details: { snapshotId: snapshot.id, provider: 'lvm' },
      });
    }
    return lv;
  }

  async function taggedSnapshots(selector: TagSelector): Promise<Snapshot[]> {
    if (!hasDeviceMapper() || !findTool('lvs')) return [];
    const found: Snapshot[] = [];
    for (const lv of await listLvs()) {
      const tags = decodeTags(lv.tags);
      if (tags[TagKey.role] !== 'snapshot' || !matchesSelector(tags, selector)) continue;
      found.push(snapshotOf(lv, tags));
    }
    return newestFirst(found);
  }

  const provider: SnapshotProvider = {
    id: 'lvm',
    defaultQuiesce: 'none',
    supportedQuiesce: {
      none: true,
      stop: true,
      // Only on Linux >= 6.8: checkQuiesce refuses it on older kernels, with a hint.
      fsfreeze: true,
    },
    permissions: [],

    async locate(dataDir: string): Promise<Volume[]> {
      const path = await realDataDir(dataDir);
      const mount = await findMount(path);
      const primary = await lvOfMount(mount, `DATA_DIR '${dataDir}'`);
      const inFilesystem = join(mount.fsRoot, relative(mount.target, path));
      const volumes = [volumeOf(primary, mount, inFilesystem.replace(/^\/+/, ''))];
      const lvs = [primary];
      for (const target of await mountsBelow(path)) {
        const nested = await findMount(target);
        const lv = await lvOfMount(nested, `'${target}', mounted inside DATA_DIR,`);
        if (lvs.some((known) => known.fullName === lv.fullName)) continue;
        lvs.push(lv);
        volumes.push(volumeOf(lv, nested, nested.fsRoot.replace(/^\/+/, '')));
      }
      const { extents, space } = await planClassic(lvs);
      for (const volume of volumes) {
        const planned = extents.get(volume.id);
        const vg = space.get(volume.attributes!.vg!);
        if (planned !== undefined && vg) {
          volume.attributes = { ...volume.attributes, snapshotBytes: String(planned * vg.extentBytes) };
        }
      }
      return volumes;
    },

    async checkQuiesce(volumes: readonly Volume[], quiesce: QuiesceMode): Promise<void> {
      const problem = consistencyProblem(volumes, quiesce);
      if (problem) throw problem;
      plannedQuiesce = quiesce;
    },

    async createSnapshots(volumes: readonly Volume[], tags: Tags): Promise<Snapshot[]> {
      requireLvmTools();
      requireDeviceMapper();
      const problem = consistencyProblem(volumes, plannedQuiesce);
      if (problem) throw problem;
      const runId = (tags[TagKey.runId] ?? randomBytes(4).toString('hex')).replace(/[^A-Za-z0-9_.+-]/g, '_');
      const all = await listLvs();
      const origins = originsOf(volumes, all);
      const { extents } = await planClassic(origins);
      const createdAt = new Date().toISOString();
      const owned = ownedTags(tags, 'snapshot', createdAt);
      const planned = origins.map((origin, i) => {
        const suffix = `-dssnap-${runId}`;
        const name = `${origin.name.slice(0, Math.max(1, 100 - suffix.length))}${suffix}`;
        return {
          origin,
          name,
          extents: extents.get(origin.fullName),
          tags: { ...owned, 'dssnap:fs-type': volumes[i]!.fsType },
        };
      });
      // Every check before the first lvcreate: a clash or a missing VG changes nothing.
      for (const { origin, name } of planned) {
        if (all.some((lv) => lv.fullName === `${origin.vg}/${name}`)) {
          throw new DssnapError(
            'PROVIDER_ERROR',
            `A logical volume named ${origin.vg}/${name} already exists: the snapshot of ${origin.fullName} cannot take its name`,
            {
              hint: `If it is a leftover of dssnap, 'dssnap cleanup --provider lvm' removes it; otherwise rename it (lvrename ${origin.vg} ${name} NEW).`,
              details: { lv: `${origin.vg}/${name}` },
            },
          );
        }
      }
      const created: Snapshot[] = [];
      const createAll = async (): Promise<void> => {
        for (const { origin, name, extents: size, tags: snapshotTags } of planned) {
          try {
            await createSnapshotLv({
              origin,
              name,
              ...(size === undefined ? {} : { extents: size }),
              tags: encodeTags(snapshotTags),
            });
          } catch (error) {
            // lvcreate may have created the LV before failing: deleted with the others below.
            created.push(placeholder(origin, name, snapshotTags, createdAt));
            throw explainCreateFailure(error, origin, name);
          }
          created.push(placeholder(origin, name, snapshotTags, createdAt));
        }
      };
      try {
        // With --quiesce fsfreeze or stop the core already holds the writers still.
        if (planned.length > 1 && nestedFreeze && (plannedQuiesce ?? 'none') === 'none') {
          // One instant for the whole set: every filesystem frozen across every lvcreate (Linux >= 6.8).
          await whileFrozen([...new Set(volumes.map((v) => v.mountPoint))], createAll, {
            maxPauseMs: settings.maxFreezeMs ?? 10_000,
            log: silentLogger(),
          });
        } else await createAll();
      } catch (error) {
        // Contract: a partial failure deletes what this call created before throwing.
        for (const snapshot of created.reverse())
          await provider.ensureDeleted(snapshot).catch(() => undefined);
        throw error;
      }
      const made = await listLvs(planned.map(({ origin, name }) => `${origin.vg}/${name}`));
      return planned.map(({ origin, name }) => {
        const lv = made.find((candidate) => candidate.fullName === `${origin.vg}/${name}`);
        if (!lv)
          throw new DssnapError(
            'PROVIDER_ERROR',
            `lvcreate reported success but ${origin.vg}/${name} is missing`,
          );
        return snapshotOf(lv, decodeTags(lv.tags));
      });
    },

    async progress(snapshot: Snapshot): Promise<SnapshotProgress> {
      const lv = await requireSnapshotLv(snapshot);
      if (isInvalidSnapshot(lv)) return { state: 'failed', reason: overflowReason(lv) };
      return { state: 'ready' };
    },

    async expose(snapshot: Snapshot, _tags: Tags): Promise<Exposure> {
      const lv = await requireSnapshotLv(snapshot);
      if (isInvalidSnapshot(lv)) throw overflowError(lv);
      const thin = isThin(lv);
      // A thin snapshot is created inactive with the activation-skip flag: activate it with -K.
      if (thin && !isActive(lv)) await setActive(lv.fullName, true);
      const tags = decodeTags(lv.tags);
      return {
        snapshotId: snapshot.id,
        device: lv.path || lv.dmPath,
        ...(tags['dssnap:fs-type'] ? { fsType: tags['dssnap:fs-type'] } : {}),
        resources: [],
        attributes: { lv: lv.fullName, thin: String(thin) },
      };
    },

    async checkExposure(exposure: Exposure): Promise<void> {
      const lv = await findLv(exposure.snapshotId);
      if (!lv) {
        throw new DssnapError('NOT_FOUND', `The LVM snapshot ${exposure.snapshotId} does not exist`, {
          details: { snapshotId: exposure.snapshotId, provider: 'lvm' },
        });
      }
      if (isInvalidSnapshot(lv)) throw overflowError(lv);
    },

    async ensureReleased(exposure: Exposure): Promise<void> {
      const lv = await findLv(exposure.snapshotId);
      if (!lv) return;
      if (isThin(lv) && isActive(lv)) await setActive(lv.fullName, false);
    },

    async ensureDeleted(snapshot: Snapshot): Promise<void> {
      const lv = await findLv(snapshot.id);
      if (!lv) return;
      // Guard: never remove an origin or an LV dssnap did not make, whatever id it was given.
      if (!isSnapshot(lv) || decodeTags(lv.tags)[TagKey.role] !== 'snapshot') {
        throw new DssnapError(
          'PROVIDER_ERROR',
          `Refusing to remove ${lv.fullName}: it is not a snapshot made by dssnap`,
          {
            details: { lv: lv.fullName, attr: lv.attr },
          },
        );
      }
      try {
        await removeLv(lv.fullName);
      } catch (error) {
        if (!(await findLv(lv.fullName))) return; // gone meanwhile = success
        throw error;
      }
    },

    async retain(snapshot: Snapshot, tags: Tags): Promise<Snapshot> {
      const lv = await requireSnapshotLv(snapshot);
      if (isInvalidSnapshot(lv)) throw overflowError(lv);
      const current = decodeTags(lv.tags);
      const wanted: Record<string, string> = { ...tags, [TagKey.retain]: 'true' };
      const add: string[] = [];
      const remove: string[] = [];
      for (const [key, value] of Object.entries(wanted)) {
        if (current[key] === value) continue;
        if (current[key] !== undefined) remove.push(encodeTag(key, current[key]));
        add.push(encodeTag(key, value));
      }
      await changeTags(lv.fullName, add, remove);
      return snapshotOf(lv, { ...current, ...wanted });
    },

    list: (selector: TagSelector) => taggedSnapshots(selector),

    async orphans(selector: TagSelector): Promise<OwnedResource[]> {
      const found = await taggedSnapshots({ ...selector, retained: undefined });
      return found
        .filter((snapshot) => !isRetained(snapshot.tags))
        .map((snapshot) => ({
          kind: 'snapshot' as const,
          id: snapshot.id,
          tags: snapshot.tags,
          attributes: { ...snapshot.attributes, volumeId: snapshot.volumeId },
        }));
    },

    async doctor(context: { dataDir?: string }): Promise<ProviderCheck[]> {
      return lvmDoctor(provider, context.dataDir, nestedFreeze);
    },

    isNotFound(error: unknown): boolean {
      if (isDssnapError(error) && error.code === 'NOT_FOUND') return true;
      return isLvmNotFound(error);
    },

    isPermanent(error: unknown): boolean {
      // Local commands: only a busy LV (lvremove on slow systems, rsnapshot #162) or a timeout may pass.
      return !isLvmBusy(error);
    },
  };
  return provider;
}

function snapshotOf(lv: LogicalVolume, tags: Tags): Snapshot {
  return {
    id: lv.fullName,
    provider: 'lvm',
    volumeId: `${lv.vg}/${lv.origin}`,
    createdAt: tags[TagKey.createdAt] ?? '',
    tags,
    attributes: {
      vg: lv.vg,
      lv: lv.name,
      origin: lv.origin,
      path: lv.path || lv.dmPath,
      thin: String(isThin(lv)),
      ...(isThin(lv) ? {} : { sizeBytes: String(lv.sizeBytes) }),
      ...(isInvalidSnapshot(lv) ? { invalid: 'true' } : {}),
    },
  };
}

function placeholder(origin: LogicalVolume, name: string, tags: Tags, createdAt: string): Snapshot {
  return { id: `${origin.vg}/${name}`, provider: 'lvm', volumeId: origin.fullName, createdAt, tags };
}

function overflowReason(lv: LogicalVolume): string {
  const size = lv.sizeBytes > 0 ? ` (${formatSize(lv.sizeBytes)} of copy-on-write space)` : '';
  return `the LVM snapshot ${lv.fullName} overflowed${size}: the origin changed more than it can hold, and LVM invalidated it`;
}

function overflowError(lv: LogicalVolume): DssnapError {
  return new DssnapError(
    'PROVIDER_ERROR',
    `${overflowReason(lv)[0]!.toUpperCase()}${overflowReason(lv).slice(1)}; a copy read from it is not a consistent backup`,
    {
      hint: `Give snapshots more room: --snapshot-size 40% (or a size such as 4G) with free extents in VG '${lv.vg}' (vgextend), back up when DSS writes less, or use a thin LV.`,
      details: { lv: lv.fullName, attr: lv.attr, snapPercent: lv.snapPercent },
    },
  );
}

function explainCreateFailure(error: unknown, origin: LogicalVolume, name: string): unknown {
  const stderr = (error as { stderr?: unknown }).stderr;
  if (typeof stderr !== 'string') return error;
  if (/Insufficient free space|insufficient suitable allocatable extents/i.test(stderr)) {
    return new DssnapError(
      'NO_SPACE',
      `Volume group '${origin.vg}' has no room for the snapshot of ${origin.fullName}`,
      {
        cause: error,
        hint: `Free extents in '${origin.vg}' (vgextend) or give a smaller --snapshot-size.`,
      },
    );
  }
  if (/already exists/i.test(stderr)) {
    return new DssnapError('PROVIDER_ERROR', `A logical volume named ${origin.vg}/${name} already exists`, {
      cause: error,
      hint: `Remove or rename it (lvrename ${origin.vg} ${name} NEW), or run 'dssnap cleanup --provider lvm' if dssnap left it.`,
    });
  }
  return error;
}

/** `dssnap doctor --provider lvm`: lvm2 tools, device-mapper and its targets, room, freeze support. */
async function lvmDoctor(
  provider: SnapshotProvider,
  dataDir: string | undefined,
  nestedFreeze: boolean,
): Promise<ProviderCheck[]> {
  const checks: ProviderCheck[] = [];
  const tools = ['lvs', 'vgs', 'lvcreate', 'lvremove', 'lvchange', 'dmsetup'];
  const missing = tools.filter((tool) => !findTool(tool));
  checks.push({
    name: 'lvm2 tools',
    ok: missing.length === 0,
    detail:
      missing.length === 0
        ? tools.map((tool) => findTool(tool)).join(', ')
        : `missing ${missing.join(', ')}: apt-get install lvm2`,
  });
  const dm = hasDeviceMapper();
  checks.push({
    name: 'device-mapper',
    ok: dm,
    detail: dm
      ? '/dev/mapper/control present'
      : 'missing: this kernel has no device-mapper (modprobe dm_mod)',
  });
  if (dm && findTool('dmsetup')) {
    const targets = await deviceMapperTargets().catch(() => [] as string[]);
    const modprobe = findTool('modprobe');
    const loadable = async (module: string): Promise<boolean> => {
      if (!modprobe) return false;
      return run(modprobe, ['--dry-run', '--quiet', module]).then(
        () => true,
        () => false,
      );
    };
    for (const [target, module, needed] of [
      ['snapshot', 'dm_snapshot', 'classic snapshots'],
      ['thin', 'dm_thin_pool', 'thin snapshots'],
    ] as const) {
      const listed = targets.includes(target);
      const ok = listed || (await loadable(module));
      checks.push({
        name: `dm target ${target}`,
        ok,
        detail: listed
          ? `loaded (${needed})`
          : ok
            ? `${module} loadable on demand (${needed})`
            : `missing: ${needed} need the ${module} module`,
      });
    }
  }
  if (dataDir && dm && missing.length === 0) {
    try {
      const volumes = await provider.locate(dataDir);
      for (const volume of volumes) {
        const attributes = volume.attributes ?? {};
        checks.push({
          name: `room ${volume.id}`,
          ok: true,
          detail:
            attributes.thin === 'true'
              ? `thin LV in pool ${attributes.pool}: thin snapshot, no size needed`
              : `classic snapshot of ${formatSize(Number(attributes.snapshotBytes))} fits in VG ${attributes.vg}`,
        });
        checks.push({
          name: `freeze ${volume.mountPoint}`,
          ok: freezable.has(volume.fsType),
          detail: freezable.has(volume.fsType)
            ? `${volume.fsType} supports freeze (lvcreate freezes it for the snapshot instant)`
            : `${volume.fsType} cannot be frozen: its snapshot is only crash-consistent`,
        });
      }
      if (volumes.length > 1) {
        checks.push({
          name: 'consistent set',
          ok: true,
          detail: nestedFreeze
            ? `${volumes.length} LVs frozen together around their snapshots`
            : `${volumes.length} LVs and a kernel older than 6.8: back up with --quiesce stop`,
        });
      }
    } catch (error) {
      checks.push({
        name: 'room',
        ok: false,
        detail: error instanceof Error ? error.message : String(error),
      });
    }
  }
  return checks;
}
