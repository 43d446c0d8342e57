/**
 * Preconditions for tests that need root or a kernel filesystem. They THROW with a clear message:
 * a missing precondition is a failure, never a silent skip (CI runs as root).
 */
import { readFileSync } from 'node:fs';
import { run } from '../../src/host/exec.js';

/** Throws unless the process runs as root. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'This test needs root (loop devices, mkfs, mount); CI runs as root. Run the tests as root.',
    );
  }
}

/**
 * Throws unless running as root and the kernel supports `fsType` (loading its module if needed).
 */
export async function requireKernelFs(fsType: 'btrfs' | 'xfs' | 'ext4'): Promise<void> {
  requireRoot();
  if (kernelHas(fsType)) return;
  await run('modprobe', [fsType]).catch(() => undefined);
  if (!kernelHas(fsType)) {
    throw new Error(
      `This test needs root and the ${fsType} kernel module (not in /proc/filesystems, modprobe ${fsType} failed); CI runs as root with it.`,
    );
  }
}

function kernelHas(fsType: string): boolean {
  const filesystems = readFileSync('/proc/filesystems', 'utf8');
  return filesystems.split('\n').some((line) => line.trim().split(/\s+/).pop() === fsType);
}
