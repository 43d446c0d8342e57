import { existsSync } from 'node:fs';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/host/exec.js';
import { createLoopVolume } from './loop-volume.js';

async function attachedLoops(): Promise<string> {
  return (await run('losetup', ['-a'])).stdout;
}

describe('createLoopVolume', () => {
  it.each(['btrfs', 'xfs', 'ext4'] as const)(
    'mounts a writable %s filesystem and disposes of it twice',
    async (fsType) => {
      const volume = await createLoopVolume({ fsType });

      try {
        await writeFile(join(volume.mountPoint, 'probe'), 'ok');
        const mounted = (await run('findmnt', ['-n', '-o', 'FSTYPE', volume.mountPoint])).stdout.trim();
        expect(mounted).toBe(fsType);
      } finally {
        await volume.dispose();
        await volume.dispose();
      }

      expect(await attachedLoops()).not.toContain(volume.image);
      expect(existsSync(volume.image)).toBe(false);
    },
  );

  it('creates the requested btrfs subvolume', async () => {
    const volume = await createLoopVolume({ fsType: 'btrfs', subvolume: 'dss-data' });

    try {
      const shown = await run('btrfs', ['subvolume', 'show', volume.subvolumePath!]);
      expect(shown.stdout).toContain('Name: \t\t\tdss-data');
    } finally {
      await volume.dispose();
    }
  });

  it('still detaches when the mount is busy (lazy unmount)', async () => {
    const volume = await createLoopVolume({ fsType: 'ext4', sizeMb: 16 });
    const busy = await open(join(volume.mountPoint, 'held-open'), 'w');

    try {
      await volume.dispose();

      expect(existsSync(volume.image)).toBe(false);
    } finally {
      await busy.close();
    }
  });

  it('refuses a size below the filesystem minimum', async () => {
    const creating = createLoopVolume({ fsType: 'xfs', sizeMb: 100 });

    await expect(creating).rejects.toThrow('xfs needs at least 300 MB, got 100');
  });
});
