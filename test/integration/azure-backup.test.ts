/**
 * Snapshot backups with the azure provider, end to end: the real `@azure/arm-compute` SDK and the
 * default credential chain (managed identity from the fake IMDS) over HTTPS to the stateful ARM fake,
 * a real XFS "managed disk" holding DATA_DIR (loop device at scsi1/lun0), fsfreeze around the snapshot,
 * a temporary disk made from the snapshot attached at a free LUN, mounted read-only (`nouuid`), real
 * rsync. Prints the number of ARM calls each backup made.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { catalogDir, readManifests } from '../../src/catalog/manifest.js';
import { startDss } from '../../src/dss/control.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { TagKey } from '../../src/provider/types.js';
import {
  type AzureDssHost,
  cleanAzureHostState,
  createAzureDssHost,
  testResourceGroup,
  testVmName,
  testZone,
} from '../support/azure-cloud.js';
import { reportCalls, withImageMounted } from '../support/cloud-harness.js';
import { compareTrees, formatDifferences } from '../support/tree-compare.js';

const log = process.env.DEBUG_AZURE ? createLogger({ level: 'debug', format: 'json' }) : silentLogger();
const excludedByDefault = ['tmp', 'caches', 'data-catalog'];

describe('snapshot backup with the azure provider', () => {
  let host: AzureDssHost;
  let firstId: string;

  beforeAll(async () => {
    host = await createAzureDssHost();
    await startDss(host.info, { log });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('copies DATA_DIR as it was at the snapshot instant, byte for byte, pausing writers under 1 s', async () => {
    const mark = host.cloud.proxy.mark();
    const armBefore = host.cloud.arm.requests.length;
    const copyBefore = host.cloud.snapshotCopyMs();

    const result = await runBackup(host.options({ keepSnapshot: true }), { log });

    const counts = host.cloud.proxy.countsSince(mark);
    const total = reportCalls('ARM', 'a backup keeping its snapshot', counts);
    expect(result.exitCode).toBe(0);
    expect(result.manifest).toMatchObject({ provider: 'azure', quiesce: 'fsfreeze', mode: 'snapshot' });
    // The pause less what the simulator spends copying the disk image (Azure does not copy it then).
    expect(result.manifest.pauseMs - (host.cloud.snapshotCopyMs() - copyBefore)).toBeLessThan(1000);
    expect(counts).toMatchObject({
      'PUT snapshots': 1,
      'PUT disks': 1,
      'POST attachDetachDataDisks': 2,
      'DELETE disks': 1,
      'PATCH snapshots': 1,
    });
    expect(counts['DELETE snapshots']).toBeUndefined();
    expect(total).toBeLessThan(60);
    // The snapshot is incremental and made from the data disk; the disk from the snapshot once complete.
    const puts = host.cloud.arm.requests.slice(armBefore).filter((r) => r.method === 'PUT');
    expect(puts[0]!.body).toMatchObject({
      location: 'westeurope',
      tags: { [TagKey.runId]: result.runId, [TagKey.role]: 'snapshot', [TagKey.dataDir]: host.dataDir },
      properties: {
        incremental: true,
        creationData: { createOption: 'Copy', sourceResourceId: host.disk.diskId },
      },
    });
    expect(puts[1]!.body).toMatchObject({
      zones: ['2'],
      sku: { name: 'Premium_LRS' },
      tags: { [TagKey.runId]: result.runId, [TagKey.role]: 'exposure' },
      properties: {
        creationData: { createOption: 'Copy', sourceResourceId: result.manifest.snapshots[0]!.id },
      },
    });
    const [snapshot] = result.manifest.snapshots;
    expect(snapshot).toMatchObject({ provider: 'azure', volumeId: host.disk.diskId, retained: true });
    const generation = result.manifest.copy!.location;
    const differences = await withImageMounted(
      host.cloud.simulator.snapshotImage(snapshot!.id.toLowerCase()),
      (root) => compareTrees(join(root, 'dss'), generation, { ignore: excludedByDefault }),
    );
    expect(formatDifferences(differences)).toBe(formatDifferences([]));
    expect(host.cloud.retainedSnapshots()).toEqual([
      {
        id: snapshot!.id,
        tags: expect.objectContaining({ [TagKey.retain]: 'true', [TagKey.runId]: result.runId }),
      },
    ]);
    expect(await host.state()).toEqual(cleanAzureHostState);
    firstId = result.backupId;
  });

  it('deletes its snapshot when not kept, and links the new generation to the previous one', async () => {
    const retainedBefore = host.cloud.retainedSnapshots();
    const mark = host.cloud.proxy.mark();

    const result = await runBackup(host.options(), { log });

    reportCalls('ARM', 'an incremental backup', host.cloud.proxy.countsSince(mark));
    expect(result.manifest.copy!.basedOn).toBe(firstId);
    expect(result.manifest.snapshots[0]).toMatchObject({ retained: false });
    expect(host.cloud.proxy.countsSince(mark)['DELETE snapshots']).toBe(1);
    expect(host.cloud.retainedSnapshots()).toEqual(retainedBefore);
    expect(await host.state()).toEqual(cleanAzureHostState);
  });

  it('takes a snapshot-only rollback point (--copy none --keep-snapshot) without any disk', async () => {
    const mark = host.cloud.proxy.mark();

    const result = await runBackup(host.options({ copy: 'none', keepSnapshot: true, to: undefined }), {
      log,
    });

    const counts = host.cloud.proxy.countsSince(mark);
    reportCalls('ARM', 'a snapshot-only run', counts);
    expect(result.exitCode).toBe(0);
    expect(counts['PUT disks']).toBeUndefined();
    expect(counts['POST attachDetachDataDisks']).toBeUndefined();
    const manifests = await readManifests(join(host.stateDir, 'catalog'));
    expect(manifests.map((m) => m.id)).toContain(result.backupId);
    expect(host.cloud.retainedSnapshots().map((s) => s.id)).toContain(result.manifest.snapshots[0]!.id);
    expect(await host.state()).toEqual(cleanAzureHostState);
  });

  it('makes a full snapshot with fullSnapshot: true', async () => {
    const before = host.cloud.arm.requests.length;

    const result = await runBackup(host.options({}, { fullSnapshot: true }), { log });

    expect(result.exitCode).toBe(0);
    const put = host.cloud.arm.requests
      .slice(before)
      .find((r) => r.method === 'PUT' && /snapshots/.test(r.path));
    expect(put!.body).toMatchObject({ properties: { incremental: false } });
    expect((await readManifests(catalogDir(host.destination))).length).toBe(3);
    expect(await host.state()).toEqual(cleanAzureHostState);
  });

  it('works with IMDS blocked when the settings name the VM and the disk (--disk)', async () => {
    const { arm } = host.cloud;
    const imdsBefore = host.cloud.imds.requests.length;

    const result = await runBackup(
      host.options(
        {},
        {
          imdsEndpoint: 'http://127.0.0.1:9',
          subscription: arm.subscription,
          resourceGroup: testResourceGroup,
          vmName: testVmName,
          location: arm.location,
          zone: testZone,
          disks: [host.disk.diskId],
        },
      ),
      { log },
    );

    expect(result.exitCode).toBe(0);
    expect(result.manifest.snapshots.map((s) => s.volumeId)).toEqual([host.disk.diskId]);
    expect(host.cloud.imds.requests.length).toBe(imdsBefore);
    expect(await host.state()).toEqual(cleanAzureHostState);
  });
});
