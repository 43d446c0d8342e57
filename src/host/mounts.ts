/**
 * Mount facts and read-only mounts of exposed snapshots. The exposed device is a writable clone, so a
 * plain `ro` mount replays the journal into the clone and yields a clean filesystem (DESIGN.md §4b).
 */
import { existsSync } from 'node:fs';
import { mkdir, rmdir } from 'node:fs/promises';
import { DssnapError } from '../errors.js';
import { CommandError, run } from './exec.js';

export interface MountInfo {
  /** Mount point. */
  target: string;
  /** Device (for btrfs with the subvolume in brackets, as findmnt prints it). */
  source: string;
  fsType: string;
  options: string;
}

/** The mount that holds `path` (findmnt -T). */
export async function mountOf(path: string): Promise<MountInfo> {
  const { stdout } = await run('findmnt', ['-J', '-T', path, '-o', 'TARGET,SOURCE,FSTYPE,OPTIONS']);
  const parsed = JSON.parse(stdout) as {
    filesystems: Array<{ target: string; source: string; fstype: string; options: string }>;
  };
  const fs = parsed.filesystems[0];
  if (!fs) throw new DssnapError('NOT_FOUND', `No mounted filesystem holds ${path}`);
  return { target: fs.target, source: fs.source, fsType: fs.fstype, options: fs.options };
}

/** Mount points strictly below `path` (other filesystems mounted inside it), outermost first. */
export async function mountsBelow(path: string): Promise<string[]> {
  const { stdout } = await run('findmnt', ['-J', '-l', '-o', 'TARGET']);
  const parsed = JSON.parse(stdout) as { filesystems: Array<{ target: string }> };
  const prefix = path.endsWith('/') ? path : `${path}/`;
  return parsed.filesystems
    .map((fs) => fs.target)
    .filter((target) => target.startsWith(prefix))
    .sort((a, b) => a.split('/').length - b.split('/').length);
}

/** True when `path` is itself a mount point. */
export async function isMountPoint(path: string): Promise<boolean> {
  try {
    await run('findmnt', ['-n', '--mountpoint', path]);
    return true;
  } catch (error) {
    if (error instanceof CommandError && error.exitCode_ === 1) return false;
    throw error;
  }
}

/** Mount options for a snapshot clone: never writable, never a way to run or open devices from it. */
export function readOnlyMountOptions(fsType: string): string[] {
  const options = ['ro', 'nosuid', 'nodev', 'noexec'];
  // XFS refuses to mount a second filesystem with the same UUID: the clone shares the origin's.
  if (fsType === 'xfs') options.push('nouuid');
  return options;
}

/** Mount `device` read-only at `mountPoint` (created if needed). Returns when mounted. */
export async function mountReadOnly(device: string, mountPoint: string, fsType: string): Promise<void> {
  // A nested volume's mount point already exists inside the (read-only) parent snapshot.
  if (!existsSync(mountPoint)) await mkdir(mountPoint, { recursive: true, mode: 0o700 });
  await run('mount', ['-t', fsType, '-o', readOnlyMountOptions(fsType).join(','), device, mountPoint], {
    timeoutMs: 120_000,
  });
}

/**
 * Bind-mount the directory `source` read-only at `mountPoint` (an existing directory: below another
 * snapshot's read-only mount it cannot be created). Returns when mounted.
 */
export async function bindMountReadOnly(source: string, mountPoint: string): Promise<void> {
  await run('mount', ['--bind', '-o', 'ro,nosuid,nodev,noexec', source, mountPoint], { timeoutMs: 60_000 });
}

/**
 * Unmount `mountPoint` and remove the empty directory. Idempotent: a path that is not mounted is success.
 * Retries a busy unmount a few times (a scanner or a shell may hold it briefly) before failing.
 */
export async function ensureUnmounted(mountPoint: string, attempts = 5): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    if (!(await isMountPoint(mountPoint).catch(() => false))) break;
    try {
      await run('umount', [mountPoint], { timeoutMs: 60_000 });
      break;
    } catch (error) {
      if (attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
  await rmdir(mountPoint).catch(() => undefined);
}
