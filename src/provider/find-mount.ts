/**
 * Which mounted filesystem holds a path (`findmnt -J -T`). Shared by provider detection and the
 * providers that need the filesystem's type, root and UUID.
 */
import { existsSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { DssnapError } from '../errors.js';
import { run } from '../host/exec.js';

export interface MountInfo {
  /** Where the filesystem is mounted (the mount point holding the path). */
  target: string;
  /** The device, without the `[/subvol]` suffix findmnt adds for btrfs subvolume mounts. */
  device: string;
  /** findmnt's SOURCE as printed, e.g. `/dev/loop0[/data]`. */
  source: string;
  fsType: string;
  options: string[];
  /** Filesystem UUID; '' when findmnt cannot tell. */
  uuid: string;
  /** The path inside the filesystem that is mounted at `target` (`/` unless a subvolume or bind). */
  fsRoot: string;
}

/**
 * DATA_DIR's real path, as every provider's `locate` starts: NOT_A_DATA_DIR (exit 3) when it does not
 * exist, rather than a findmnt error later. Changes nothing.
 */
export async function realDataDir(dataDir: string): Promise<string> {
  return realpath(dataDir).catch((error: unknown) => {
    throw new DssnapError('NOT_A_DATA_DIR', `DATA_DIR '${dataDir}' does not exist`, {
      details: { dataDir },
      cause: error,
    });
  });
}

/** The mount holding `path`. Throws NOT_FOUND when the path does not exist. Changes nothing. */
export async function findMount(path: string): Promise<MountInfo> {
  if (!existsSync(path)) {
    throw new DssnapError('NOT_FOUND', `The path '${path}' does not exist`, { details: { path } });
  }
  const { stdout } = await run('findmnt', ['-J', '-T', path, '-o', columns]);
  const entry = parseFindmnt(stdout)[0];
  if (!entry?.target || !entry.fsType) {
    throw new DssnapError('INTERNAL', `findmnt found no filesystem for '${path}'`, {
      details: { path, stdout },
    });
  }
  return entry;
}

/** Every mounted filesystem of one type (e.g. all btrfs mounts), in findmnt order. Changes nothing. */
export async function listMounts(fsType: string): Promise<MountInfo[]> {
  const { stdout } = await run('findmnt', ['-J', '-l', '-t', fsType, '-o', columns], {
    okExitCodes: [1],
  });
  return parseFindmnt(stdout);
}

const columns = 'TARGET,SOURCE,FSTYPE,OPTIONS,UUID,FSROOT';

function parseFindmnt(stdout: string): MountInfo[] {
  if (stdout.trim() === '') return [];
  const parsed = JSON.parse(stdout) as { filesystems?: Array<Record<string, string | null | undefined>> };
  return (parsed.filesystems ?? []).map((entry) => {
    const source = entry.source ?? '';
    return {
      target: entry.target ?? '',
      source,
      device: source.replace(/\[.*\]$/, ''),
      fsType: entry.fstype ?? '',
      options: (entry.options ?? '').split(',').filter(Boolean),
      uuid: entry.uuid ?? '',
      fsRoot: entry.fsroot ?? '/',
    };
  });
}
