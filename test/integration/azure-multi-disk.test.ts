/**
 * DATA_DIR spread over two managed disks (XFS at LUN 0, and an ext4 disk at LUN 3 mounted inside
 * DATA_DIR): both filesystems are frozen, both snapshots requested at once and created before the
 * thaw (one consistent set), both exposed on free LUNs and assembled, and the copy holds the files of
 * both disks as they were at the snapshot instant.
 */
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { startDss } from '../../src/dss/control.js';
import { run } from '../../src/host/exec.js';
import { ensureUnmounted } from '../../src/host/mounts.js';
import { silentLogger } from '../../src/log.js';
import { type AzureDssHost, cleanAzureHostState, createAzureDssHost } from '../support/azure-cloud.js';
import { nobody } from '../support/dss-host.js';
import { compareTrees, formatDifferences } from '../support/tree-compare.js';

const log = silentLogger();

/** Loop-mount a snapshot image read-only at `mountPoint` (which must exist); returns the unmount. */
async function mountImage(image: string, mountPoint: string, fsType: string): Promise<() => Promise<void>> {
  const loop = (await run('losetup', ['-f', '--show', '-r', image])).stdout.trim();
  await run('mount', [
    '-t',
    fsType,
    '-o',
    fsType === 'xfs' ? 'ro,nouuid,norecovery' : 'ro,noload',
    loop,
    mountPoint,
  ]);
  return async () => {
    await ensureUnmounted(mountPoint);
    await run('losetup', ['-d', loop]).catch(() => undefined);
  };
}

describe('an azure backup of a DATA_DIR on two managed disks', () => {
  let host: AzureDssHost;
  let nestedDiskId: string;

  beforeAll(async () => {
    host = await createAzureDssHost();
    const nested = await host.cloud.createDataDisk({
      name: 'dss-data-3',
      lun: 3,
      fsType: 'ext4',
      mountPoint: join(host.dataDir, 'managed_folders_disk'),
      sku: 'StandardSSD_LRS',
    });
    nestedDiskId = nested.diskId;
    await mkdir(join(nested.mountPoint, 'folder'), { recursive: true });
    await writeFile(join(nested.mountPoint, 'folder', 'data.csv'), 'a,b\n1,2\n');
    for (const path of [
      nested.mountPoint,
      join(nested.mountPoint, 'folder'),
      join(nested.mountPoint, 'folder', 'data.csv'),
    ]) {
      await chown(path, nobody.uid, nobody.gid);
    }
    await startDss(host.info, { log });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('snapshots both disks in one freeze and copies both, byte for byte', async () => {
    const before = host.cloud.arm.requests.length;
    const mark = host.cloud.proxy.mark();

    const result = await runBackup(host.options({ keepSnapshot: true }), { log });

    expect(result.exitCode).toBe(0);
    // Both snapshots were created within one freeze, under the watchdog's --max-pause (5 s); the 1 s
    // target is asserted for one disk (azure-backup.test.ts): two image copies on a loaded CI host add up.
    expect(result.manifest.pauseMs).toBeGreaterThan(0);
    expect(result.manifest.pauseMs).toBeLessThan(5000);
    expect(result.manifest.snapshots.map((s) => s.volumeId).sort()).toEqual(
      [host.disk.diskId, nestedDiskId].sort(),
    );
    // Both PUTs arrived before either snapshot operation was polled: one set, requested at once.
    const arrived = host.cloud.proxy.since(mark).map((request) => request.name);
    const puts = arrived.flatMap((name, index) => (name === 'PUT snapshots' ? [index] : []));
    expect(puts).toHaveLength(2);
    expect(Math.max(...puts)).toBeLessThan(arrived.indexOf('GET DiskOperations'));
    const requests = host.cloud.arm.requests.slice(before);
    // Exposed on free LUNs (0 and 3 are the data disks).
    const attaches = requests
      .filter((r) => r.method === 'POST' && (r.body as { dataDisksToAttach?: unknown[] }).dataDisksToAttach)
      .map((r) => (r.body as { dataDisksToAttach: Array<{ lun: number }> }).dataDisksToAttach[0]!.lun);
    expect(attaches.sort()).toEqual([1, 2]);
    const byVolume = new Map(result.manifest.snapshots.map((s) => [s.volumeId, s.id.toLowerCase()]));
    const root = await mkdtemp(join(tmpdir(), 'dssnap-azure-set-'));
    const unmountOuter = await mountImage(
      host.cloud.simulator.snapshotImage(byVolume.get(host.disk.diskId)!),
      root,
      'xfs',
    );
    const unmountInner = await mountImage(
      host.cloud.simulator.snapshotImage(byVolume.get(nestedDiskId)!),
      join(root, 'dss', 'managed_folders_disk'),
      'ext4',
    );
    try {
      const differences = await compareTrees(join(root, 'dss'), result.manifest.copy!.location, {
        ignore: ['tmp', 'caches', 'data-catalog', 'managed_folders_disk/lost+found'],
      });
      expect(formatDifferences(differences)).toBe(formatDifferences([]));
    } finally {
      await unmountInner();
      await unmountOuter();
      await rm(root, { recursive: true, force: true });
    }
    const state = await host.state();
    expect({ ...state, cloud: { ...state.cloud, snapshots: [] } }).toEqual(cleanAzureHostState);
  });
});
