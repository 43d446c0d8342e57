/**
 * du-like totals of a directory tree. Iterative (an explicit stack, so a deep tree cannot overflow the
 * call stack) and with bounded parallel lstat calls, so a million files take seconds, not minutes.
 */
import type { Dirent, Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface TreeSize {
  /** Apparent size (st_size) of regular files and symlinks, each hard-linked inode counted once. */
  bytes: number;
  /** Non-directory entries: regular files, symlinks, sockets… (each hard link counted once). */
  files: number;
  directories: number;
  /** Entries that vanished or could not be read during the walk (a live DATA_DIR changes under us). */
  skipped: number;
}

export interface TreeSizeOptions {
  signal?: AbortSignal;
  /** Parallel lstat calls; default 64. */
  concurrency?: number;
}

/**
 * Total the tree at `root` without following symlinks. A missing `root` gives all zeros; a `root`
 * that is a file or symlink counts as one file. Reads only.
 */
export async function measureTree(root: string, options: TreeSizeOptions = {}): Promise<TreeSize> {
  const concurrency = options.concurrency ?? 64;
  const total: TreeSize = { bytes: 0, files: 0, directories: 0, skipped: 0 };
  const seenInodes = new Set<string>();

  const top = await lstatOrUndefined(root);
  if (!top) return total;
  if (!top.isDirectory()) {
    count(total, top, seenInodes);
    return total;
  }

  const stack: string[] = [root];
  while (stack.length > 0) {
    options.signal?.throwIfAborted();
    const dir = stack.pop()!;
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      total.skipped++;
      continue;
    }
    total.directories++;
    const others: string[] = [];
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) stack.push(path);
      else others.push(path);
    }
    for (let start = 0; start < others.length; start += concurrency) {
      const batch = others.slice(start, start + concurrency);
      const stats = await Promise.all(batch.map(lstatOrUndefined));
      for (const stats_ of stats) {
        if (stats_) count(total, stats_, seenInodes);
        else total.skipped++;
      }
    }
  }
  return total;
}

function count(total: TreeSize, stats: Stats, seenInodes: Set<string>): void {
  if (stats.nlink > 1 && !stats.isDirectory()) {
    const key = `${stats.dev}:${stats.ino}`;
    if (seenInodes.has(key)) return;
    seenInodes.add(key);
  }
  total.files++;
  total.bytes += stats.size;
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch {
    return undefined;
  }
}
