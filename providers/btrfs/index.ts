/**
 * The btrfs provider: DATA_DIR is the root of its own subvolume; a snapshot is a read-only subvolume
 * (`btrfs subvolume snapshot -r`, atomic by itself, so no quiesce is needed) in a snapshot directory
 * on the same filesystem, with its tags in a sidecar JSON file. The exposure is the snapshot itself.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { basename, isAbsolute, join, relative, resolve } from 'node:path';
import { z } from 'zod';
import { DssnapError, isDssnapError } from '../../src/errors.js';
import { CommandError } from '../../src/host/exec.js';
import { findMount, listMounts, type MountInfo, realDataDir } from '../../src/provider/find-mount.js';
import { parseProviderSettings } from '../../src/provider/settings.js';
import { isRetained, matchesSelector, newestFirst, ownedTags } from '../../src/provider/tags.js';
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
import { readSidecar, readSidecars, removeSidecar, type SidecarRecord, writeSidecar } from './sidecar.js';
import {
  createReadOnlySnapshot,
  deleteSubvolume,
  nestedSubvolumes,
  showSubvolume,
  topLevelSubvolumeId,
} from './subvolume.js';

/** Default snapshot directory, at the root of the mounted btrfs filesystem. */
export const defaultSnapshotDirName = '.dssnap-snapshots';

const settingsSchema = z.strictObject({
  /** Where snapshots go; must be on the same btrfs filesystem as DATA_DIR and outside it. */
  snapshotDir: z.string().refine(isAbsolute, 'must be an absolute path').optional(),
});

export type BtrfsSettings = z.infer<typeof settingsSchema>;

export const factory: ProviderFactory = {
  id: 'btrfs',
  description: 'btrfs: read-only subvolume snapshots of a DATA_DIR that is its own subvolume',
  create: async (options) => createBtrfsProvider(options),
};

/** Build a btrfs provider. Throws CONFIG_INVALID for bad settings; touches nothing until called. */
export function createBtrfsProvider(options: ProviderOptions): SnapshotProvider {
  const settings = parseProviderSettings('btrfs', settingsSchema, options.settings);

  /** The snapshot directories to read for `list`/`orphans`: the configured one, or each btrfs mount's. */
  async function snapshotDirs(selector: TagSelector): Promise<string[]> {
    if (settings.snapshotDir) return [settings.snapshotDir];
    if (selector.dataDir !== undefined && existsSync(selector.dataDir)) {
      return [join((await findMount(selector.dataDir)).target, defaultSnapshotDirName)];
    }
    // The same filesystem tree may be mounted twice: read each (filesystem, path) once.
    const seen = new Map<string, string>();
    for (const mount of await listMounts('btrfs')) {
      const key = `${mount.uuid || mount.device}:${join(mount.fsRoot, defaultSnapshotDirName)}`;
      if (!seen.has(key)) seen.set(key, join(mount.target, defaultSnapshotDirName));
    }
    return [...seen.values()];
  }

  async function sidecarsMatching(selector: TagSelector) {
    const found = [];
    for (const dir of await snapshotDirs(selector)) {
      for (const entry of await readSidecars(dir)) {
        if (matchesSelector(entry.record.tags, selector)) found.push(entry);
      }
    }
    return found;
  }

  const provider: SnapshotProvider = {
    id: 'btrfs',
    defaultQuiesce: 'none',
    supportedQuiesce: {
      none: true,
      stop: true,
      fsfreeze:
        'fsfreeze then a btrfs snapshot waits for the thaw forever (DESIGN.md §1); use none: the snapshot is atomic by itself',
    },
    permissions: [],

    async locate(dataDir: string): Promise<Volume[]> {
      const path = await realDataDir(dataDir);
      const mount = await findMount(path);
      if (mount.fsType !== 'btrfs') {
        throw new DssnapError(
          'UNSUPPORTED',
          `DATA_DIR '${dataDir}' is on a ${mount.fsType} filesystem (mounted at ${mount.target}), not btrfs`,
          {
            hint: 'Choose the provider that matches this storage with --provider, or use --mode cold.',
            details: { dataDir, fsType: mount.fsType, mountPoint: mount.target },
          },
        );
      }
      const subvolume = await showSubvolume(path);
      if (!subvolume) {
        throw new DssnapError(
          'UNSUPPORTED',
          `DATA_DIR '${dataDir}' is a directory inside a btrfs subvolume, not the root of its own subvolume`,
          { hint: makeSubvolumeHint(path), details: { dataDir, mountPoint: mount.target } },
        );
      }
      if (subvolume.id === topLevelSubvolumeId) {
        throw new DssnapError(
          'UNSUPPORTED',
          `DATA_DIR '${dataDir}' is the top-level subvolume (id 5) of its btrfs filesystem: a snapshot would hold the whole filesystem, not DATA_DIR alone`,
          { hint: makeSubvolumeHint(path), details: { dataDir, mountPoint: mount.target } },
        );
      }
      const nested = await nestedSubvolumes(path);
      if (nested.length > 0) {
        throw new DssnapError(
          'UNSUPPORTED',
          `DATA_DIR '${dataDir}' holds nested btrfs subvolumes (${nested.join(', ')}): a snapshot would show them as empty directories, so they would be missing from the backup`,
          {
            hint: 'Turn them into plain directories (stop DSS; cp -a --reflink=always into a new directory; delete the subvolume; rename), or back up with --mode cold.',
            details: { dataDir, nested },
          },
        );
      }
      return [
        {
          id: path,
          mountPoint: path,
          relativePath: '',
          fsType: 'btrfs',
          device: mount.device,
          attributes: {
            subvolumeId: String(subvolume.id),
            subvolumeUuid: subvolume.uuid,
            subvolumePath: subvolume.pathInFilesystem,
            filesystemUuid: mount.uuid,
            mountRoot: mount.target,
          },
        },
      ];
    },

    async createSnapshots(volumes: readonly Volume[], tags: Tags): Promise<Snapshot[]> {
      const runId = safeName(tags[TagKey.runId] ?? randomBytes(4).toString('hex'));
      const created: Snapshot[] = [];
      try {
        for (const volume of volumes) {
          const mount = await findMount(volume.id);
          const dir = await prepareSnapshotDir(
            settings.snapshotDir ?? join(mount.target, defaultSnapshotDirName),
            mount,
            volume.id,
          );
          const createdAt = new Date().toISOString();
          const path = join(dir, `${basename(volume.id)}@${compactTime(createdAt)}-${runId}`);
          if (existsSync(path)) {
            throw new DssnapError('PROVIDER_ERROR', `A snapshot named '${path}' already exists`, {
              details: { path },
            });
          }
          const snapshot = snapshotAt(path, {
            version: 1,
            volumeId: volume.id,
            createdAt,
            tags: ownedTags(tags, 'snapshot', createdAt),
          });
          // Record first, snapshot second: a crash in between leaves a record for `orphans`/`cleanup`.
          await writeSidecar(path, snapshot);
          created.push(snapshot);
          await createReadOnlySnapshot(volume.id, path).catch((error: unknown) => {
            throw explainSnapshotFailure(error, volume.id, path);
          });
        }
      } catch (error) {
        // Contract: on a partial failure, delete what this call created before throwing.
        for (const snapshot of created.reverse())
          await provider.ensureDeleted(snapshot).catch(() => undefined);
        throw error;
      }
      return created;
    },

    async progress(snapshot: Snapshot): Promise<SnapshotProgress> {
      await requireSnapshot(snapshot);
      return { state: 'ready' };
    },

    async expose(snapshot: Snapshot, _tags: Tags): Promise<Exposure> {
      // A read-only subvolume is already a readable directory: nothing to create, nothing to mount.
      const path = await requireSnapshot(snapshot);
      return { snapshotId: snapshot.id, directory: path, fsType: 'btrfs', resources: [] };
    },

    async ensureReleased(_exposure: Exposure): Promise<void> {
      // Nothing was created by expose.
    },

    async ensureDeleted(snapshot: Snapshot): Promise<void> {
      const path = pathOf(snapshot);
      if (existsSync(path)) {
        const subvolume = await showSubvolume(path);
        // Guard: this must never delete DATA_DIR or any writable subvolume by a mistaken id.
        if (!subvolume?.readOnly) {
          throw new DssnapError(
            'PROVIDER_ERROR',
            `Refusing to delete '${path}': it is not a read-only btrfs snapshot`,
            {
              details: { path },
            },
          );
        }
        await deleteSubvolume(path).catch((error: unknown) => {
          if (existsSync(path)) throw error; // gone meanwhile = success
        });
      }
      await removeSidecar(path);
    },

    async retain(snapshot: Snapshot, tags: Tags): Promise<Snapshot> {
      const path = await requireSnapshot(snapshot);
      const record = (await readSidecar(path)) ?? {
        version: 1 as const,
        volumeId: snapshot.volumeId,
        createdAt: snapshot.createdAt,
        tags: { ...snapshot.tags },
      };
      const retained = snapshotAt(path, {
        ...record,
        tags: { ...record.tags, ...tags, [TagKey.retain]: 'true' },
      });
      await writeSidecar(path, retained);
      return retained;
    },

    async list(selector: TagSelector): Promise<Snapshot[]> {
      const found = (await sidecarsMatching(selector)).filter((entry) => existsSync(entry.snapshotPath));
      return newestFirst(found.map((entry) => snapshotAt(entry.snapshotPath, entry.record)));
    },

    async orphans(selector: TagSelector): Promise<OwnedResource[]> {
      // A sidecar without its subvolume (crash between the two) is an orphan too: cleanup removes the record.
      const found = await sidecarsMatching({ ...selector, retained: undefined });
      return newestFirst(found.map((entry) => snapshotAt(entry.snapshotPath, entry.record)))
        .filter((snapshot) => !isRetained(snapshot.tags))
        .map((snapshot) => ({
          kind: 'snapshot' as const,
          id: snapshot.id,
          tags: snapshot.tags,
          attributes: { ...snapshot.attributes, exists: String(existsSync(snapshot.id)) },
        }));
    },

    isNotFound(error: unknown): boolean {
      if (isDssnapError(error) && error.code === 'NOT_FOUND') return true;
      return (
        error instanceof CommandError && /No such file or directory|cannot find real path/i.test(error.stderr)
      );
    },

    isPermanent(error: unknown): boolean {
      // Local commands: only a busy subvolume or a timed-out command may succeed when tried again.
      if (!(error instanceof CommandError)) return true;
      return !(error.timedOut || /busy|try again|temporarily unavailable/i.test(error.stderr));
    },
  };
  return provider;
}

function snapshotAt(path: string, record: SidecarRecord): Snapshot {
  return {
    id: path,
    provider: 'btrfs',
    volumeId: record.volumeId,
    createdAt: record.createdAt,
    tags: record.tags,
    attributes: { path, sidecar: `${path}.json` },
  };
}

function pathOf(snapshot: Snapshot): string {
  return snapshot.attributes?.path ?? snapshot.id;
}

/** The snapshot's path when its subvolume exists; NOT_FOUND otherwise. */
async function requireSnapshot(snapshot: Snapshot): Promise<string> {
  const path = pathOf(snapshot);
  if (!existsSync(path)) {
    throw new DssnapError('NOT_FOUND', `The btrfs snapshot '${path}' does not exist`, {
      details: { snapshotId: snapshot.id, provider: 'btrfs' },
    });
  }
  return path;
}

/**
 * Create the snapshot directory (0700) if needed and check it is on the filesystem of `subvolume`
 * (a snapshot cannot cross filesystems) and outside it. Returns the directory.
 */
async function prepareSnapshotDir(dir: string, mount: MountInfo, subvolume: string): Promise<string> {
  const inside = relative(subvolume, resolve(dir));
  if (inside === '' || (!inside.startsWith('..') && !isAbsolute(inside))) {
    throw new DssnapError(
      'UNSUPPORTED',
      `The btrfs snapshot directory '${dir}' is inside DATA_DIR '${subvolume}'`,
      {
        hint: `DATA_DIR is mounted as the root of its filesystem (${mount.target}). Mount the top-level subvolume elsewhere (mount -o subvolid=5 ${mount.device} /mnt/btrfs-top) and set the btrfs provider's snapshotDir setting to a directory there.`,
        details: { snapshotDir: dir, dataDir: subvolume },
      },
    );
  }
  if (!existsSync(dir)) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
  }
  const where = await findMount(dir);
  // Compare filesystem UUIDs (a multi-device filesystem may show another member device); devices otherwise.
  const sameFilesystem = where.uuid && mount.uuid ? where.uuid === mount.uuid : where.device === mount.device;
  if (where.fsType !== 'btrfs' || !sameFilesystem) {
    throw new DssnapError(
      'UNSUPPORTED',
      `The btrfs snapshot directory '${dir}' is not on the filesystem of DATA_DIR '${subvolume}' (${mount.device})`,
      {
        hint: 'Set the btrfs provider snapshotDir setting to a directory on the same btrfs filesystem as DATA_DIR, outside DATA_DIR.',
        details: {
          snapshotDir: dir,
          dataDir: subvolume,
          snapshotDirDevice: where.device,
          dataDirDevice: mount.device,
        },
      },
    );
  }
  return dir;
}

function explainSnapshotFailure(error: unknown, source: string, target: string): unknown {
  if (error instanceof CommandError && /cross-device/i.test(error.stderr)) {
    return new DssnapError(
      'UNSUPPORTED',
      `Cannot snapshot '${source}' into '${target}': another filesystem`,
      {
        cause: error,
        hint: 'Set the btrfs provider snapshotDir setting to a directory on the same btrfs filesystem.',
      },
    );
  }
  return error;
}

function makeSubvolumeHint(dataDir: string): string {
  const next = `${dataDir}.new`;
  return [
    'DATA_DIR must be the root of its own btrfs subvolume, so that the snapshot holds DATA_DIR and nothing else.',
    `To make it one: stop DSS (${dataDir}/bin/dss stop); btrfs subvolume create ${next};`,
    `cp -a --reflink=always ${dataDir}/. ${next}/; mv ${dataDir} ${dataDir}.old; mv ${next} ${dataDir};`,
    `start DSS; remove ${dataDir}.old once DSS works.`,
  ].join(' ');
}

/** `2025-01-31T12:00:00.123Z` → `20250131T120000123Z`: sortable and safe in a file name. */
function compactTime(iso: string): string {
  return iso.replace(/[-:.]/g, '');
}

function safeName(text: string): string {
  return text.replace(/[^A-Za-z0-9_.-]/g, '_');
}
