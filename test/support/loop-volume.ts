/**
 * A real filesystem on a file-backed loop device, for tests: truncate an image in a temp dir,
 * `losetup -f --show`, mkfs, mount. Loop devices are a shared machine resource: always `dispose()`
 * (in afterAll or finally); it is idempotent and unmounts lazily when the mount is busy.
 */
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/host/exec.js';
import { requireKernelFs } from './require-root.js';

export type LoopFsType = 'btrfs' | 'xfs' | 'ext4';

export interface LoopVolumeOptions {
  fsType: LoopFsType;
  /** Image size; sparse, so only written blocks use disk. Default 256 (btrfs, ext4), 320 (xfs ≥ 300). */
  sizeMb?: number;
  /** btrfs only: create a subvolume with this name at the filesystem root. */
  subvolume?: string;
}

export interface LoopVolume {
  device: string;
  mountPoint: string;
  image: string;
  fsType: LoopFsType;
  /** Absolute path of the subvolume, when one was asked for. */
  subvolumePath?: string;
  /** Unmount (lazily if busy), detach the loop device, remove the temp dir. Idempotent. */
  dispose(): Promise<void>;
}

const minimumMb: Record<LoopFsType, number> = { btrfs: 120, xfs: 300, ext4: 8 };
const defaultMb: Record<LoopFsType, number> = { btrfs: 256, xfs: 320, ext4: 256 };

/** Create, format and mount a loop volume. On any failure, undoes what it did and rethrows. */
export async function createLoopVolume(options: LoopVolumeOptions): Promise<LoopVolume> {
  const { fsType } = options;
  const sizeMb = options.sizeMb ?? defaultMb[fsType];
  if (sizeMb < minimumMb[fsType]) {
    throw new Error(`createLoopVolume: ${fsType} needs at least ${minimumMb[fsType]} MB, got ${sizeMb}`);
  }
  if (options.subvolume !== undefined && fsType !== 'btrfs') {
    throw new Error('createLoopVolume: subvolume needs fsType btrfs');
  }
  await requireKernelFs(fsType);

  const dir = await mkdtemp(join(tmpdir(), `dssnap-loop-${fsType}-`));
  const image = join(dir, 'image.img');
  const mountPoint = join(dir, 'mnt');
  let device: string | undefined;
  let mounted = false;
  let disposed = false;

  async function dispose(): Promise<void> {
    if (disposed) return;
    disposed = true;
    if (mounted) {
      await run('umount', [mountPoint]).catch(() => run('umount', ['-l', mountPoint]).catch(() => undefined));
      mounted = false;
    }
    if (device) {
      await run('losetup', ['-d', device]).catch(() => undefined);
      device = undefined;
    }
    await rm(dir, { recursive: true, force: true });
  }

  try {
    const handle = await open(image, 'w');
    await handle.truncate(sizeMb * 1024 * 1024);
    await handle.close();
    device = (await run('losetup', ['-f', '--show', image])).stdout.trim();
    await run(`mkfs.${fsType}`, mkfsArgs(fsType, device), { timeoutMs: 60_000 });
    await mkdir(mountPoint);
    await run('mount', [device, mountPoint]);
    mounted = true;
    let subvolumePath: string | undefined;
    if (options.subvolume !== undefined) {
      subvolumePath = join(mountPoint, options.subvolume);
      await run('btrfs', ['subvolume', 'create', subvolumePath]);
    }
    const attached = device;
    return {
      device: attached,
      mountPoint,
      image,
      fsType,
      ...(subvolumePath === undefined ? {} : { subvolumePath }),
      dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}

function mkfsArgs(fsType: LoopFsType, device: string): string[] {
  switch (fsType) {
    case 'btrfs':
      return ['-q', '-f', device];
    case 'xfs':
      return ['-q', '-f', device];
    case 'ext4':
      return ['-q', '-F', device];
  }
}
