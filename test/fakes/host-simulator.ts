/**
 * The host side of a cloud, for tests: cloud disks are sparse image files, "attached to this instance"
 * means a loop device plus by-id-style links under a temp `deviceDir` (what udev makes on a real
 * instance), a snapshot is a point-in-time copy of a disk's image and a disk made from a snapshot a
 * copy of that (`cp --reflink=auto --sparse=always`: instant on XFS or btrfs). Generic: each cloud's
 * glue names the links (`nvme-Amazon_Elastic_Block_Store_vol…`, `google-<name>`, `lun<N>`) and calls
 * these methods when its emulator or fake server reports a change.
 *
 * Operations on one disk run in order; an attach may be delayed (the device appears a little after the
 * API says "attached", as on a real instance) and is dropped if a detach came meanwhile.
 */
import { existsSync } from 'node:fs';
import { mkdir, open, rm, symlink, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CommandError, run } from '../../src/host/exec.js';

export interface HostSimulatorOptions {
  /** Where disk and snapshot images live (a reflink-capable filesystem makes copies instant). */
  imageDir: string;
  /** Where the by-id-style links are made (created if missing). */
  deviceDir: string;
}

export interface HostSimulator {
  readonly deviceDir: string;
  /** A new empty disk (sparse image) of `sizeBytes`. */
  createDisk(id: string, sizeBytes: number): Promise<void>;
  /** A new disk holding a copy of snapshot `snapshotId`. */
  createDiskFromSnapshot(id: string, snapshotId: string): Promise<void>;
  /**
   * Copy disk `diskId` into snapshot `snapshotId`. A filesystem mounted from the disk is frozen around
   * the copy unless already frozen (by the code under test), so what was written before is in it.
   */
  snapshotDisk(diskId: string, snapshotId: string): Promise<void>;
  /**
   * Attach: a loop device, then `links` (relative to deviceDir) pointing at it. Resolves when attached.
   * `readOnly` makes a read-only loop device (a disk attached READ_ONLY).
   */
  attach(
    id: string,
    links: readonly string[],
    options?: { delayMs?: number; readOnly?: boolean },
  ): Promise<void>;
  /** Detach: remove the links and the loop device (a mounted one goes away when unmounted). Idempotent. */
  detach(id: string): Promise<void>;
  deleteDisk(id: string): Promise<void>;
  deleteSnapshot(id: string): Promise<void>;
  hasDisk(id: string): boolean;
  /** The loop device of an attached disk. */
  deviceOf(id: string): string | undefined;
  diskImage(id: string): string;
  snapshotImage(id: string): string;
  disks(): string[];
  snapshots(): string[];
  /** Ids of attached disks. */
  attached(): string[];
  /** Every snapshot taken, in order, with the filesystems that were already frozen (by the code under test). */
  readonly snapshotLog: ReadonlyArray<{
    diskId: string;
    snapshotId: string;
    alreadyFrozen: string[];
    frozenHere: string[];
  }>;
  /** Resolves when no operation is queued or running. */
  settled(): Promise<void>;
  /** Unmount (lazily) what is mounted from attached disks, detach them, remove images and links. */
  dispose(): Promise<void>;
}

interface Disk {
  image: string;
  device?: string;
  links: string[];
  /** What the cloud last said: attached or not. A delayed attach checks it before acting. */
  wanted: boolean;
}

export async function createHostSimulator(options: HostSimulatorOptions): Promise<HostSimulator> {
  const { imageDir, deviceDir } = options;
  await mkdir(join(imageDir, 'disks'), { recursive: true });
  await mkdir(join(imageDir, 'snapshots'), { recursive: true });
  await mkdir(deviceDir, { recursive: true });
  const disks = new Map<string, Disk>();
  const snapshots = new Set<string>();
  const snapshotLog: Array<{
    diskId: string;
    snapshotId: string;
    alreadyFrozen: string[];
    frozenHere: string[];
  }> = [];
  const queues = new Map<string, Promise<unknown>>();
  const diskImage = (id: string): string => join(imageDir, 'disks', `${safe(id)}.img`);
  const snapshotImage = (id: string): string => join(imageDir, 'snapshots', `${safe(id)}.img`);

  /** Run `op` after every earlier operation on `id`. */
  function queued<T>(id: string, op: () => Promise<T>): Promise<T> {
    const next = (queues.get(id) ?? Promise.resolve()).then(op);
    queues.set(
      id,
      next.catch(() => undefined),
    );
    return next;
  }

  function disk(id: string): Disk {
    const found = disks.get(id);
    if (!found) throw new Error(`host simulator: no disk ${id}`);
    return found;
  }

  async function detachNow(id: string): Promise<void> {
    const found = disks.get(id);
    if (!found?.device) return;
    for (const link of found.links) await unlink(join(deviceDir, link)).catch(() => undefined);
    await run('losetup', ['-d', found.device]).catch(() => undefined);
    found.device = undefined;
    found.links = [];
  }

  const simulator: HostSimulator = {
    deviceDir,
    createDisk: (id, sizeBytes) =>
      queued(id, async () => {
        const image = diskImage(id);
        const handle = await open(image, 'w');
        await handle.truncate(sizeBytes);
        await handle.close();
        disks.set(id, { image, links: [], wanted: false });
      }),
    createDiskFromSnapshot: (id, snapshotId) =>
      queued(id, async () => {
        if (!snapshots.has(snapshotId)) throw new Error(`host simulator: no snapshot ${snapshotId}`);
        await copyImage(snapshotImage(snapshotId), diskImage(id));
        disks.set(id, { image: diskImage(id), links: [], wanted: false });
      }),
    snapshotDisk: (diskId, snapshotId) =>
      queued(diskId, async () => {
        const found = disk(diskId);
        const freezes = found.device
          ? await freezeMounts(found.device)
          : { frozenHere: [], alreadyFrozen: [] };
        try {
          await copyImage(found.image, snapshotImage(snapshotId));
        } finally {
          for (const mountPoint of freezes.frozenHere)
            await run('fsfreeze', ['--unfreeze', mountPoint]).catch(() => undefined);
        }
        snapshots.add(snapshotId);
        snapshotLog.push({ diskId, snapshotId, ...freezes });
      }),
    attach(id, links, attachOptions = {}) {
      disk(id).wanted = true;
      return queued(id, async () => {
        if (attachOptions.delayMs) await new Promise((resolve) => setTimeout(resolve, attachOptions.delayMs));
        const found = disk(id);
        if (!found.wanted || found.device) return;
        const readOnly = attachOptions.readOnly ? ['-r'] : [];
        found.device = (await run('losetup', ['-f', '--show', ...readOnly, found.image])).stdout.trim();
        for (const link of links) {
          const path = join(deviceDir, link);
          await mkdir(dirname(path), { recursive: true });
          await unlink(path).catch(() => undefined);
          await symlink(found.device, path);
          found.links.push(link);
        }
      });
    },
    detach(id) {
      const found = disks.get(id);
      if (found) found.wanted = false;
      return queued(id, () => detachNow(id));
    },
    deleteDisk: (id) =>
      queued(id, async () => {
        await detachNow(id);
        disks.delete(id);
        await rm(diskImage(id), { force: true });
      }),
    deleteSnapshot: (id) =>
      queued(`snapshot:${id}`, async () => {
        snapshots.delete(id);
        await rm(snapshotImage(id), { force: true });
      }),
    snapshotLog,
    hasDisk: (id) => disks.has(id),
    deviceOf: (id) => disks.get(id)?.device,
    diskImage,
    snapshotImage,
    disks: () => [...disks.keys()].sort(),
    snapshots: () => [...snapshots].sort(),
    attached: () =>
      [...disks.entries()]
        .filter(([, d]) => d.device)
        .map(([id]) => id)
        .sort(),
    async settled() {
      while (true) {
        const pending = [...queues.values()];
        await Promise.all(pending);
        if ([...queues.values()].every((q, i) => q === pending[i]) && queues.size === pending.length) return;
      }
    },
    async dispose() {
      await simulator.settled();
      for (const [id, found] of disks) {
        if (!found.device) continue;
        for (const mountPoint of await mountsOf(found.device)) {
          await run('umount', [mountPoint]).catch(() =>
            run('umount', ['-l', mountPoint]).catch(() => undefined),
          );
        }
        await detachNow(id);
      }
      disks.clear();
      snapshots.clear();
      await rm(join(imageDir, 'disks'), { recursive: true, force: true });
      await rm(join(imageDir, 'snapshots'), { recursive: true, force: true });
      await rm(deviceDir, { recursive: true, force: true });
    },
  };
  return simulator;
}

async function copyImage(from: string, to: string): Promise<void> {
  if (!existsSync(from)) throw new Error(`host simulator: no image ${from}`);
  await run('cp', ['--reflink=auto', '--sparse=always', from, to]);
}

/** Mount points of `device`, deepest first. */
async function mountsOf(device: string): Promise<string[]> {
  const { stdout } = await run('findmnt', ['-J', '-l', '-S', device, '-o', 'TARGET'], { okExitCodes: [1] });
  if (stdout.trim() === '') return [];
  const parsed = JSON.parse(stdout) as { filesystems?: Array<{ target: string }> };
  return (parsed.filesystems ?? []).map((fs) => fs.target).sort((a, b) => b.length - a.length);
}

/** Freeze each filesystem mounted from `device` that is not frozen yet (those are to be thawed). */
async function freezeMounts(device: string): Promise<{ frozenHere: string[]; alreadyFrozen: string[] }> {
  const frozenHere: string[] = [];
  const alreadyFrozen: string[] = [];
  for (const mountPoint of await mountsOf(device)) {
    try {
      await run('fsfreeze', ['--freeze', mountPoint], { timeoutMs: 30_000 });
      frozenHere.push(mountPoint);
    } catch (error) {
      // Already frozen by the code under test (EBUSY): the copy is consistent as it is.
      if (!(error instanceof CommandError && /busy/i.test(error.stderr))) throw error;
      alreadyFrozen.push(mountPoint);
    }
  }
  return { frozenHere, alreadyFrozen };
}

function safe(id: string): string {
  return id.replace(/[^A-Za-z0-9_.-]/g, '_');
}
