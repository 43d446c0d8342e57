/**
 * Snapshot backups with the gcp provider, end to end: the real `@google-cloud/compute` SDK and Google's
 * Application Default Credentials (a token from the fake metadata server) over HTTP to the stateful
 * Compute fake, a real XFS persistent disk holding DATA_DIR (loop device, `google-dss-data` link),
 * fsfreeze around `disks.createSnapshot`, a temporary disk made from the snapshot attached here as a
 * loop device, mounted read-only (`nouuid`), real rsync. Prints the number of Compute calls per backup.
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
import { reportCalls, withImageMounted } from '../support/cloud-harness.js';
import { cleanGcpHostState, createGcpDssHost, type GcpDssHost, gcpProject } from '../support/gcp-cloud.js';
import { compareTrees, formatDifferences } from '../support/tree-compare.js';

const log = silentLogger();
const excludedByDefault = ['tmp', 'caches', 'data-catalog'];
const validLabel = { key: /^[a-z][a-z0-9_-]{0,62}$/, value: /^[a-z0-9_-]{0,63}$/ };

describe('snapshot backup with the gcp provider', () => {
  let host: GcpDssHost;
  let firstId: string;

  beforeAll(async () => {
    host = await createGcpDssHost();
    await startDss(host.info, { log });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  async function expectNothingLeft(): Promise<void> {
    expect(await host.state()).toEqual(cleanGcpHostState);
  }

  it('copies DATA_DIR as it was at the snapshot instant, byte for byte, with a pause under 1 s', async () => {
    const mark = host.cloud.proxy.mark();

    const result = await runBackup(host.options({ keepSnapshot: true }), { log });

    const counts = host.cloud.proxy.countsSince(mark);
    const total = reportCalls('Compute', 'a backup keeping its snapshot', counts);
    expect(result.exitCode).toBe(0);
    expect(result.manifest).toMatchObject({ provider: 'gcp', quiesce: 'fsfreeze', mode: 'snapshot' });
    expect(result.manifest.pauseMs).toBeLessThan(1000);
    expect(counts).toMatchObject({
      'Disks.CreateSnapshot': 1,
      'Disks.Insert': 1,
      'Instances.AttachDisk': 1,
      'Instances.DetachDisk': 1,
      'Disks.Delete': 1,
      'Snapshots.SetLabels': 1,
    });
    expect(counts['Snapshots.Delete']).toBeUndefined();
    expect(total).toBeLessThan(60);
    // ADC found the VM's service account through the metadata server, and every call carried its token.
    expect(
      host.cloud.metadata.requests.filter((r) => r.includes('service-accounts/default/token')),
    ).not.toEqual([]);
    expect(host.cloud.compute.calls.filter((c) => c.status === 401)).toEqual([]);
    const [snapshot] = result.manifest.snapshots;
    expect(snapshot).toMatchObject({
      provider: 'gcp',
      volumeId: `projects/${gcpProject}/zones/europe-west1-b/disks/dss-data`,
      retained: true,
    });
    // The filesystem was frozen by dssnap while the snapshot was taken (the simulator found it frozen).
    expect(host.cloud.simulator.snapshotLog.at(-1)).toEqual({
      diskId: 'dss-data',
      snapshotId: snapshot!.id,
      alreadyFrozen: [host.mountPoints[0]],
      frozenHere: [],
    });
    const generation = result.manifest.copy!.location;
    const differences = await withImageMounted(host.cloud.simulator.snapshotImage(snapshot!.id), (root) =>
      compareTrees(join(root, 'dss'), generation, { ignore: excludedByDefault }),
    );
    expect(formatDifferences(differences)).toBe(formatDifferences([]));
    await expectNothingLeft();
    firstId = result.backupId;
  });

  it('labels the snapshot by GCP rules and keeps the exact tags, retained', async () => {
    const retained = [...host.cloud.compute.snapshots.values()].filter(
      (s) => s.labels['dssnap-retain'] === 'true',
    );

    expect(retained).toHaveLength(1);
    const [snapshot] = retained;
    for (const [key, value] of Object.entries(snapshot!.labels)) {
      expect(key).toMatch(validLabel.key);
      expect(value).toMatch(validLabel.value);
    }
    expect(snapshot!.labels).toMatchObject({
      'dssnap-role': 'snapshot',
      'dssnap-run-id': firstId.toLowerCase(),
      'dssnap-data-dir': host.dataDir.toLowerCase().replace(/[^a-z0-9_-]/g, '_'),
    });
    expect(JSON.parse(snapshot!.description!)).toMatchObject({
      tags: { [TagKey.dataDir]: host.dataDir, [TagKey.runId]: firstId, [TagKey.role]: 'snapshot' },
      attributes: { fsType: 'xfs', disk: 'dss-data' },
    });
  });

  it('deletes its snapshot when not kept, and links the new generation to the previous one', async () => {
    const retainedBefore = [...host.cloud.compute.snapshots.keys()];
    const mark = host.cloud.proxy.mark();

    const result = await runBackup(host.options(), { log });

    const counts = host.cloud.proxy.countsSince(mark);
    reportCalls('Compute', 'an incremental backup', counts);
    expect(result.manifest.copy!.basedOn).toBe(firstId);
    expect(result.manifest.snapshots[0]).toMatchObject({ retained: false });
    expect(counts['Snapshots.Delete']).toBe(1);
    expect([...host.cloud.compute.snapshots.keys()]).toEqual(retainedBefore);
    await expectNothingLeft();
  });

  it('takes a snapshot-only rollback point (--copy none --keep-snapshot) in seconds, in a given location', async () => {
    const mark = host.cloud.proxy.mark();
    const started = Date.now();

    const result = await runBackup(
      host.options({ copy: 'none', keepSnapshot: true }, { snapshotLocation: 'eu' }),
      { log },
    );

    const total = reportCalls(
      'Compute',
      'a snapshot-only rollback point',
      host.cloud.proxy.countsSince(mark),
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(host.cloud.proxy.countsSince(mark)['Disks.Insert']).toBeUndefined();
    expect(total).toBeLessThan(20);
    expect(result.manifest.copy).toBeUndefined();
    expect((await readManifests(join(host.stateDir, 'catalog'))).map((m) => m.id)).toContain(result.backupId);
    expect(host.cloud.compute.snapshots.get(result.manifest.snapshots[0]!.id)).toMatchObject({
      storageLocations: ['eu'],
      labels: expect.objectContaining({ 'dssnap-retain': 'true' }),
    });
    await expectNothingLeft();
  });

  it('refuses a DATA_DIR that is not on a persistent disk, naming the disks setting, before creating anything', async () => {
    const mark = host.cloud.proxy.mark();
    const elsewhere = await mkdtemp(join(tmpdir(), 'dssnap-gcp-not-pd-'));
    try {
      const { generateDataDir } = await import('../fixtures/generate-data-dir.js');
      await generateDataDir({ dir: elsewhere, preset: 'tiny', files: 20, bytes: 20_000, seed: 9 });

      const attempt = runBackup(host.options({ dataDir: elsewhere }), { log });

      await expect(attempt).rejects.toMatchObject({ code: 'UNSUPPORTED', exitCode: 5 });
      expect(Object.keys(host.cloud.proxy.countsSince(mark)).filter((m) => !/\.(Get|List)$/.test(m))).toEqual(
        [],
      );
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  it('refuses a disk given with --disk that is not attached to this VM', async () => {
    host.cloud.compute.addDisk('other-disk');

    const attempt = runBackup(host.options({}, { disks: ['other-disk'] }), { log });

    await expect(attempt).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringContaining('disk other-disk is not attached to this VM (dss-design-1)'),
      hint: expect.stringContaining("disks: ['disk-name']"),
    });
    expect((await readManifests(catalogDir(host.destination))).length).toBe(2);
  });

  it('refuses attachMode READ_ONLY for an XFS DATA_DIR before creating anything, saying why', async () => {
    const mark = host.cloud.proxy.mark();

    const attempt = runBackup(host.options({}, { attachMode: 'READ_ONLY' }), { log });

    await expect(attempt).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      hint: expect.stringContaining('XFS always recovers its log when mounted'),
    });
    expect(Object.keys(host.cloud.proxy.countsSince(mark))).toEqual(['Instances.Get']);
  });

  it('fails at once when the missing IAM permission is denied, naming it, and leaves nothing', async () => {
    host.cloud.compute.denied.add('compute.disks.createSnapshot');
    try {
      const attempt = runBackup(host.options(), { log });

      await expect(attempt).rejects.toMatchObject({
        code: 'PROVIDER_ERROR',
        message: expect.stringContaining('lack the IAM permission compute.disks.createSnapshot'),
      });
    } finally {
      host.cloud.compute.denied.clear();
    }
    await expectNothingLeft();
  });

  it('declares every IAM permission these runs needed', async () => {
    const { createGcpProvider } = await import('../../providers/gcp/index.js');
    const declared = createGcpProvider({ stateDir: host.stateDir }).permissions.map((p) => p.action);

    const undeclared = [...host.cloud.compute.checkedPermissions].filter((p) => !declared.includes(p));

    expect(undeclared).toEqual([]);
    expect(host.cloud.compute.checkedPermissions.size).toBeGreaterThan(12);
  });

  it('fails fast when Google reports the snapshot FAILED, with the operation’s message, and leaves nothing', async () => {
    host.cloud.compute.settings.snapshotFailure = 'Snapshot creation failed: disk is being resized';
    const started = Date.now();
    try {
      const attempt = runBackup(host.options(), { log });

      await expect(attempt).rejects.toMatchObject({
        message: expect.stringContaining('Snapshot creation failed: disk is being resized'),
      });
    } finally {
      delete host.cloud.compute.settings.snapshotFailure;
    }
    expect(Date.now() - started).toBeLessThan(15_000);
    await expectNothingLeft();
  });
});
