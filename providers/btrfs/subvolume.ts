/**
 * The btrfs commands the provider runs, each wrapped once: inspect a subvolume, take a read-only
 * snapshot, delete one.
 */
import { stat } from 'node:fs/promises';
import { run } from '../../src/host/exec.js';

/** The inode number of every btrfs subvolume root (BTRFS_FIRST_FREE_OBJECTID), the top-level one included. */
const subvolumeRootInode = 256;
/** The id of a btrfs filesystem's top-level subvolume (BTRFS_FS_TREE_OBJECTID). */
export const topLevelSubvolumeId = 5;

export interface SubvolumeInfo {
  /** Path relative to the filesystem's top level, as `btrfs subvolume show` prints it ('/' for id 5). */
  pathInFilesystem: string;
  id: number;
  uuid: string;
  readOnly: boolean;
}

/**
 * Facts about the subvolume whose root is `path`, or undefined when `path` is a plain directory (not
 * a subvolume root) or does not exist. Throws when `btrfs` itself fails. Changes nothing.
 */
export async function showSubvolume(path: string): Promise<SubvolumeInfo | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isDirectory() || info.ino !== subvolumeRootInode) return undefined;
  const { stdout } = await run('btrfs', ['subvolume', 'show', path]);
  const field = (name: string): string =>
    stdout.match(new RegExp(`^\\s*${name}:\\s*(.*)$`, 'm'))?.[1]?.trim() ?? '';
  return {
    pathInFilesystem: stdout.split('\n')[0]?.trim() ?? '',
    id: Number(field('Subvolume ID')),
    uuid: field('UUID'),
    readOnly: /\breadonly\b/.test(field('Flags')),
  };
}

/** `btrfs subvolume snapshot -r source target`: returns once the (atomic) snapshot exists. */
export async function createReadOnlySnapshot(source: string, target: string): Promise<void> {
  await run('btrfs', ['subvolume', 'snapshot', '-r', source, target], { timeoutMs: 120_000 });
}

/** `btrfs subvolume delete path` (space is freed in the background). */
export async function deleteSubvolume(path: string): Promise<void> {
  await run('btrfs', ['subvolume', 'delete', path], { timeoutMs: 120_000 });
}

/**
 * Paths (relative to `path`) of the subvolumes nested below the subvolume at `path`. A snapshot does
 * not descend into them: they appear as empty directories in it. Changes nothing.
 */
export async function nestedSubvolumes(path: string): Promise<string[]> {
  const [{ stdout: list }, self] = await Promise.all([
    run('btrfs', ['subvolume', 'list', '-o', path]),
    showSubvolume(path),
  ]);
  const prefix = self && self.pathInFilesystem !== '/' ? `${self.pathInFilesystem.replace(/^\//, '')}/` : '';
  return list
    .split('\n')
    .map((line) => /\bpath (.+)$/.exec(line.trim())?.[1])
    .filter((p): p is string => Boolean(p))
    .map((p) => (p.startsWith(`<FS_TREE>/`) ? p.slice('<FS_TREE>/'.length) : p))
    .map((p) => (p.startsWith(prefix) ? p.slice(prefix.length) : p));
}
