/**
 * Snapshot backups with the aws provider, end to end: the real AWS SDK over HTTP to moto's EC2, a real
 * XFS "EBS volume" holding DATA_DIR (loop device), fsfreeze around CreateSnapshot, a temporary volume
 * made from the snapshot attached here as a loop device, mounted read-only (`nouuid`), real rsync.
 * Prints the number of EC2 calls each backup made.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { catalogDir, readManifests } from '../../src/catalog/manifest.js';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { TagKey } from '../../src/provider/types.js';
import { type AwsDssHost, cleanHostState, createAwsDssHost } from '../support/aws-cloud.js';
import { reportCalls, withImageMounted } from '../support/cloud-harness.js';
import { compareTrees, formatDifferences } from '../support/tree-compare.js';

const log = silentLogger();
const excludedByDefault = ['tmp', 'caches', 'data-catalog'];

describe('snapshot backup with the aws provider', () => {
  let host: AwsDssHost;
  let firstId: string;

  beforeAll(async () => {
    host = await createAwsDssHost();
    await startDss(host.info, { log });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  async function expectNothingLeft(): Promise<void> {
    expect(await host.state()).toEqual(cleanHostState);
  }

  it('copies DATA_DIR as it was at the snapshot instant, byte for byte, with a pause under 1 s', async () => {
    const mark = host.cloud.proxy.mark();
    const imdsBefore = host.cloud.imds.requests.length;

    const result = await runBackup(host.options({ keepSnapshot: true }), { log });

    const total = reportCalls('EC2 API', 'a backup keeping its snapshot', host.cloud.proxy.countsSince(mark));
    console.log(`Pause (fsfreeze around CreateSnapshot): ${result.manifest.pauseMs} ms`);
    expect(result.exitCode).toBe(0);
    expect(result.manifest).toMatchObject({ provider: 'aws', quiesce: 'fsfreeze', mode: 'snapshot' });
    expect(result.manifest.pauseMs).toBeLessThan(1000);
    expect(await host.cloud.ec2.config.region()).toBe('us-east-1');
    expect(host.cloud.proxy.countsSince(mark)).toMatchObject({
      CreateSnapshot: 1,
      CreateVolume: 1,
      AttachVolume: 1,
      DetachVolume: 1,
      DeleteVolume: 1,
      CreateTags: 1,
    });
    expect(host.cloud.proxy.countsSince(mark).DeleteSnapshot).toBeUndefined();
    // The manifest tells the admin what the run cost in API calls (the proxy saw at least those).
    expect(result.manifest.apiCalls).toMatchObject({ CreateSnapshot: 1, CreateVolume: 1, AttachVolume: 1 });
    expect(total).toBeLessThan(40);
    expect(host.cloud.imds.requests[imdsBefore]).toMatch(/^PUT \/latest\/api\/token 200/);
    const [snapshot] = result.manifest.snapshots;
    expect(snapshot).toMatchObject({ provider: 'aws', volumeId: host.volume.volumeId, retained: true });
    // The filesystem was frozen by dssnap while EC2 took the snapshot (the simulator found it frozen).
    expect(host.cloud.simulator.snapshotLog.at(-1)).toEqual({
      diskId: host.volume.volumeId,
      snapshotId: snapshot!.id,
      alreadyFrozen: [host.volume.mountPoint],
      frozenHere: [],
    });
    const generation = result.manifest.copy!.location;
    const differences = await withImageMounted(host.cloud.simulator.snapshotImage(snapshot!.id), (root) =>
      compareTrees(join(root, 'dss'), generation, { ignore: excludedByDefault }),
    );
    expect(formatDifferences(differences)).toBe(formatDifferences([]));
    expect(await host.cloud.retainedSnapshots()).toEqual([
      {
        id: snapshot!.id,
        tags: expect.objectContaining({ [TagKey.retain]: 'true', [TagKey.runId]: result.runId }),
      },
    ]);
    await expectNothingLeft();
    firstId = result.backupId;
  });

  it('deletes its snapshot when not kept, and links the new generation to the previous one', async () => {
    const retainedBefore = await host.cloud.retainedSnapshots();
    const mark = host.cloud.proxy.mark();

    const result = await runBackup(host.options(), { log });

    reportCalls('EC2 API', 'an incremental backup', host.cloud.proxy.countsSince(mark));
    expect(result.manifest.copy!.basedOn).toBe(firstId);
    expect(result.manifest.snapshots[0]).toMatchObject({ retained: false });
    expect(host.cloud.proxy.countsSince(mark).DeleteSnapshot).toBe(1);
    expect(await host.cloud.retainedSnapshots()).toEqual(retainedBefore);
    await expectNothingLeft();
  });

  it('takes a snapshot-only rollback point (--copy none --keep-snapshot) in a few calls, tagged with its class', async () => {
    const mark = host.cloud.proxy.mark();
    const started = Date.now();

    const result = await runBackup(
      host.options({ copy: 'none', keepSnapshot: true }, { retentionClass: 'pre-upgrade' }),
      {
        log,
      },
    );

    const total = reportCalls(
      'EC2 API',
      'a snapshot-only rollback point',
      host.cloud.proxy.countsSince(mark),
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(host.cloud.proxy.countsSince(mark).CreateVolume).toBeUndefined();
    expect(total).toBeLessThan(12);
    expect(result.manifest.copy).toBeUndefined();
    expect((await readManifests(join(host.stateDir, 'catalog'))).map((m) => m.id)).toContain(result.backupId);
    const retained = (await host.cloud.retainedSnapshots()).find(
      (s) => s.id === result.manifest.snapshots[0]!.id,
    );
    expect(retained?.tags).toMatchObject({
      [TagKey.retain]: 'true',
      'dssnap:retention-class': 'pre-upgrade',
      [TagKey.dataDir]: host.dataDir,
      [TagKey.role]: 'snapshot',
    });
    await expectNothingLeft();
  });

  it('refuses a DATA_DIR that is not on an EBS volume, naming --volume, before creating anything', async () => {
    const mark = host.cloud.proxy.mark();
    const elsewhere = await mkdtemp(join(tmpdir(), 'dssnap-aws-not-ebs-'));
    try {
      const { generateDataDir } = await import('../fixtures/generate-data-dir.js');
      await generateDataDir({ dir: elsewhere, preset: 'tiny', files: 20, bytes: 20_000, seed: 9 });

      const attempt = runBackup(host.options({ dataDir: elsewhere }), { log });

      await expect(attempt).rejects.toMatchObject({
        code: 'UNSUPPORTED',
        exitCode: 5,
        hint: expect.stringContaining('--volume vol-'),
      });
      expect(
        Object.keys(host.cloud.proxy.countsSince(mark)).filter((a) => !a.startsWith('Describe')),
      ).toEqual([]);
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  it('refuses a --volume that is not attached to this instance', async () => {
    const { CreateVolumeCommand } = await import('@aws-sdk/client-ec2');
    const other = await host.cloud.ec2.send(
      new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size: 1 }),
    );

    const attempt = runBackup(host.options({ volume: [other.VolumeId!] }), { log });

    await expect(attempt).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringContaining(
        `${other.VolumeId} (holding ${host.volume.mountPoint}) is not attached to this instance`,
      ),
    });
    expect((await readManifests(catalogDir(host.destination))).length).toBe(2);
  });
});
