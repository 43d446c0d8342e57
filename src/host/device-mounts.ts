/**
 * Where a block device is mounted on this host — the device itself and its partitions — so that a
 * provider can unmount a temporary disk a killed run left mounted before it detaches the disk.
 */
import { realpath } from 'node:fs/promises';
import { run } from './exec.js';

/**
 * Mount points of `device` (a path or a link to it) and of its partitions, deepest first so nested
 * mounts come off before their parents. An absent device has none. Changes nothing.
 */
export async function mountPointsOf(device: string): Promise<string[]> {
  const real = await realpath(device).catch(() => undefined);
  if (!real) return [];
  const { stdout } = await run('lsblk', ['-J', '-l', '-n', '-p', '-o', 'NAME,MOUNTPOINTS', real], {
    okExitCodes: [1, 32],
  });
  if (stdout.trim() === '') return [];
  const parsed = JSON.parse(stdout) as { blockdevices?: Array<{ mountpoints?: Array<string | null> }> };
  const targets = (parsed.blockdevices ?? []).flatMap((d) => d.mountpoints ?? []);
  return targets.filter((t): t is string => typeof t === 'string').sort((a, b) => b.length - a.length);
}
