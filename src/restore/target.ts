/**
 * The restore target: what is at the DATA_DIR path now, and the filesystem moves that replace it without
 * ever deleting it. The live DATA_DIR is renamed aside (`DATA_DIR.before-restore-<time>`) on its own
 * filesystem and the restored tree, prepared beside it, renamed into place: two renames, and every step
 * can be undone by renaming back. A DATA_DIR that is itself a mount point cannot be renamed: its content
 * is copied aside to the parent filesystem (refused when there is no room) and put back from there on
 * failure. A DATA_DIR that is a btrfs subvolume is restored as a subvolume, so that snapshots keep working.
 */
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, realpath, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { checkFreeSpace } from '../backup/destination.js';
import { type DataDirInfo, inspectDataDir } from '../dss/layout.js';
import { measureTree } from '../dss/tree-size.js';
import { formatBytes } from '../duration.js';
import { DssnapError, isDssnapError } from '../errors.js';
import { requireTool, run } from '../host/exec.js';
import { isMountPoint, mountOf } from '../host/mounts.js';

export type TargetState = 'missing' | 'empty' | 'data-dir';
/** rename: DATA_DIR renamed aside; copy-aside: a mount point, its content copied aside; new: nothing there. */
export type RestoreStrategy = 'rename' | 'copy-aside' | 'new';

export interface RestoreTarget {
  /** Absolute path of DATA_DIR (its parent's real path + its name). */
  path: string;
  parent: string;
  state: TargetState;
  /** When a DSS data directory is there. */
  info?: DataDirInfo;
  mountPoint: boolean;
  /** The root of a btrfs subvolume (its inode is 256): the restored tree is made one too. */
  subvolume: boolean;
  strategy: RestoreStrategy;
}

/**
 * Look at the restore target. Changes nothing. Throws USAGE when the path is a file, or a non-empty
 * directory that is not a DSS data directory (dssnap never replaces what it cannot recognise), and
 * NOT_FOUND when its parent directory does not exist.
 */
export async function inspectTarget(path: string): Promise<RestoreTarget> {
  const absolute = resolve(path);
  let parent: string;
  try {
    parent = await realpath(dirname(absolute));
  } catch (error) {
    throw new DssnapError('NOT_FOUND', `The parent directory of ${absolute} does not exist`, {
      cause: error,
      hint: `Create ${dirname(absolute)} first (owned like the DSS install), then restore into it.`,
      details: { dataDir: absolute },
    });
  }
  const target = join(parent, basename(absolute));
  const info = await lstat(target).catch(() => undefined);
  if (!info) {
    return { path: target, parent, state: 'missing', mountPoint: false, subvolume: false, strategy: 'new' };
  }
  if (!info.isDirectory()) {
    throw new DssnapError('USAGE', `${target} exists and is not a directory`, {
      hint: 'Restore into a DSS data directory, an empty directory or a path that does not exist yet.',
      details: { dataDir: target },
    });
  }
  const mountPoint = await isMountPoint(target);
  const subvolume = info.ino === 256 && (await mountOf(target)).fsType === 'btrfs';
  const entries = (await readdir(target)).filter((name) => name !== 'lost+found');
  if (entries.length === 0) {
    return {
      path: target,
      parent,
      state: 'empty',
      mountPoint,
      subvolume,
      strategy: mountPoint ? 'copy-aside' : 'rename',
    };
  }
  let dataDir: DataDirInfo;
  try {
    dataDir = await inspectDataDir(target);
  } catch (error) {
    if (!isDssnapError(error) || error.code !== 'NOT_A_DATA_DIR') throw error;
    throw new DssnapError(
      'USAGE',
      `${target} is not empty and is not a DSS data directory: refusing to replace it (${error.message})`,
      {
        cause: error,
        hint: 'Restore into the DSS data directory, an empty directory or a new path; move this directory away first if it is to be replaced.',
        details: { dataDir: target },
      },
    );
  }
  return {
    path: target,
    parent,
    state: 'data-dir',
    info: dataDir,
    mountPoint,
    subvolume,
    strategy: mountPoint ? 'copy-aside' : 'rename',
  };
}

/** Where the restored tree is prepared: a hidden sibling of DATA_DIR, on the same filesystem. */
export function stagingPath(target: RestoreTarget, runId: string): string {
  return join(target.parent, `.dssnap-restore-${basename(target.path)}-${runId}`);
}

/**
 * `DATA_DIR.before-restore-20250101T093000Z`: where the live DATA_DIR goes — a name nothing holds yet
 * (`…Z-2`, `…Z-3` after a restore in the same second), so an earlier restore's aside copy is never
 * replaced, nor mistaken for this run's by its undo.
 */
export function asidePath(target: RestoreTarget, when: Date): string {
  const stamp = when
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const base = `${target.path}.before-restore-${stamp}`;
  let path = base;
  for (let n = 2; existsSync(path); n++) path = `${base}-${n}`;
  return path;
}

/**
 * Check there is room for what the restore writes next to DATA_DIR: the restored tree (`restoreBytes`)
 * beside it (rename, new), or for copy-aside the aside copy on the parent filesystem and the restored
 * tree in place of the old content. Throws NO_SPACE saying which filesystem lacks room. Changes nothing.
 */
export async function checkRoom(target: RestoreTarget, restoreBytes: number): Promise<void> {
  const margin = (bytes: number): number => Math.ceil(bytes * 1.05) + 16 * 1024 * 1024;
  if (target.strategy !== 'copy-aside') {
    await roomIn(target.parent, margin(restoreBytes), `the restored tree beside ${target.path}`);
    return;
  }
  if (target.state === 'data-dir') {
    const current = await measureTree(target.path);
    await roomIn(
      target.parent,
      margin(current.bytes + current.directories * 4096),
      `the copy of ${target.path} (a mount point, which cannot be renamed) to move aside`,
    );
  }
}

async function roomIn(path: string, bytes: number, what: string): Promise<void> {
  try {
    await checkFreeSpace(path, bytes);
  } catch (error) {
    if (!isDssnapError(error) || error.code !== 'NO_SPACE') throw error;
    const free = Number(error.details.freeBytes ?? 0);
    throw new DssnapError(
      'NO_SPACE',
      `Not enough space on the filesystem of ${path} for ${what}: about ${formatBytes(bytes)} needed, ${formatBytes(free)} free`,
      {
        hint: 'Nothing was changed. Free space there, or move the current DATA_DIR away yourself (it is never deleted by dssnap) and restore into the empty path.',
        details: { path, neededBytes: bytes, freeBytes: free },
      },
    );
  }
}

/** Create the staging directory: a btrfs subvolume when DATA_DIR is one, a directory otherwise. */
export async function createStaging(path: string, subvolume: boolean): Promise<void> {
  if (subvolume) await run(requireTool('btrfs', 'btrfs-progs'), ['subvolume', 'create', path]);
  else await mkdir(path, { mode: 0o700 });
}

/**
 * Remove a staging directory (subvolume or not) and everything in it. Idempotent: a missing one is
 * success. Never called on DATA_DIR or its aside copy.
 */
export async function ensureStagingRemoved(path: string): Promise<void> {
  const info = await lstat(path).catch(() => undefined);
  if (!info) return;
  if (info.ino === 256 && (await mountOf(path)).fsType === 'btrfs') {
    await run(requireTool('btrfs', 'btrfs-progs'), ['subvolume', 'delete', path]);
    return;
  }
  await rm(path, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
}

export interface SwapPaths {
  target: string;
  staging: string;
  /** Absent when nothing was at the target (a new location). */
  aside?: string;
}

/**
 * Put the staged tree in place: DATA_DIR renamed aside, the staging renamed to DATA_DIR. If the second
 * rename fails, the first is reverted before throwing. Returns when DATA_DIR is the restored tree.
 */
export async function swapIn(paths: SwapPaths): Promise<void> {
  if (paths.aside) await rename(paths.target, paths.aside);
  try {
    await rename(paths.staging, paths.target);
  } catch (error) {
    if (paths.aside) await rename(paths.aside, paths.target);
    throw error;
  }
}

/**
 * Undo `swapIn`, from whatever state a failure or a crash left: the restored tree goes back to the
 * staging path (for its removal) and the aside DATA_DIR back to its path. Idempotent.
 */
export async function swapBack(paths: SwapPaths): Promise<void> {
  if (paths.aside !== undefined && !existsSync(paths.aside)) return;
  if (existsSync(paths.target)) {
    if (existsSync(paths.staging)) {
      throw new DssnapError(
        'INTERNAL',
        `Cannot put ${paths.aside ?? 'the original'} back: both ${paths.target} and ${paths.staging} exist`,
        { hint: `Compare them, keep the right one at ${paths.target}, and remove the other by hand.` },
      );
    }
    await rename(paths.target, paths.staging);
  }
  if (paths.aside !== undefined) await rename(paths.aside, paths.target);
}

/** Remove the content of `dir` (a mount point being restored in place), keeping the directory. */
export async function emptyDirectory(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name === 'lost+found') continue;
    await rm(join(dir, name), { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
  }
}
