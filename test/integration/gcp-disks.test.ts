/**
 * A DATA_DIR on two persistent disks (XFS holding DATA_DIR, ext4 mounted at DATA_DIR/managed_datasets):
 * GCP has no atomic multi-disk snapshot by default, so dssnap freezes both filesystems, snapshots both
 * disks, thaws — the set is consistent because nothing was written in between. The copy assembles both
 * snapshots as DATA_DIR was. Also: naming the disks explicitly (`--disk`) when no by-id link shows them.
 */
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { withImageMounted } from '../support/cloud-harness.js';
import { cleanGcpHostState, createGcpDssHost, type GcpDssHost } from '../support/gcp-cloud.js';
import { compareTrees, formatDifferences } from '../support/tree-compare.js';

const log = silentLogger();
const excludedByDefault = ['tmp', 'caches', 'data-catalog'];

describe('gcp provider, DATA_DIR on two disks', () => {
  let host: GcpDssHost;

  beforeAll(async () => {
    host = await createGcpDssHost({ datasetsDisk: 'ext4' });
    await startDss(host.info, { log });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('freezes both filesystems, snapshots both disks, thaws, and copies the whole tree as it was', async () => {
    const [dataMount, datasetsMount] = host.mountPoints;

    const result = await runBackup(host.options({ keepSnapshot: true }), { log });

    // In tests the pause also holds the simulated snapshot of each disk image (a copy on this host).
    expect(result.manifest.pauseMs).toBeLessThan(2000);
    expect(result.manifest.snapshots.map((s) => s.volumeId.split('/').pop())).toEqual([
      'dss-data',
      'dss-datasets',
    ]);
    // Each disk was snapshotted while dssnap held both filesystems frozen.
    const log2 = host.cloud.simulator.snapshotLog.slice(-2);
    expect(log2.map((entry) => entry.diskId).sort()).toEqual(['dss-data', 'dss-datasets']);
    for (const entry of log2) {
      expect(entry.frozenHere).toEqual([]);
      expect(entry.alreadyFrozen).toEqual([entry.diskId === 'dss-data' ? dataMount : datasetsMount]);
    }
    const copy = result.manifest.copy!.location;
    const [main, datasets] = result.manifest.snapshots;
    const mainDifferences = await withImageMounted(host.cloud.simulator.snapshotImage(main!.id), (root) =>
      compareTrees(join(root, 'dss'), copy, { ignore: [...excludedByDefault, 'managed_datasets'] }),
    );
    const datasetDifferences = await withImageMounted(
      host.cloud.simulator.snapshotImage(datasets!.id),
      (root) => compareTrees(root, join(copy, 'managed_datasets'), { ignore: ['lost+found'] }),
    );
    expect(formatDifferences(mainDifferences)).toBe(formatDifferences([]));
    expect(formatDifferences(datasetDifferences)).toBe(formatDifferences([]));
    expect(await host.state()).toEqual(cleanGcpHostState);
  });

  it('finds the disks named with --disk when no by-id link shows them, and refuses without', async () => {
    const link = join(host.cloud.simulator.deviceDir, 'google-dss-datasets');
    await rename(link, `${link}.hidden`);
    try {
      const refused = runBackup(host.options(), { log });
      await expect(refused).rejects.toMatchObject({
        code: 'UNSUPPORTED',
        message: expect.stringContaining('is not a Compute Engine persistent disk'),
        hint: expect.stringContaining(`'disk-name=${host.mountPoints[1]}'`),
      });

      const result = await runBackup(
        host.options({ disk: undefined }, { disks: ['dss-data', `dss-datasets=${host.mountPoints[1]}`] }),
        { log },
      );

      expect(result.manifest.snapshots.map((s) => s.volumeId.split('/').pop())).toEqual([
        'dss-data',
        'dss-datasets',
      ]);
    } finally {
      await rename(`${link}.hidden`, link);
    }
    expect(await host.state()).toEqual(cleanGcpHostState);
  });
});
