/**
 * DATA_DIR spread over two EBS volumes (one mounted inside the other) on an instance that has a third,
 * unrelated volume: one crash-consistent CreateSnapshots set of exactly the two, both exposed and
 * mounted back into place for one copy. And `--volume` when the device links cannot tell.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsProvider } from '../../providers/aws/index.js';
import { runBackup } from '../../src/backup/backup.js';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { type AwsDssHost, cleanHostState, createAwsDssHost, type DataVolume } from '../support/aws-cloud.js';

const log = silentLogger();

describe('a DATA_DIR on two EBS volumes', () => {
  let host: AwsDssHost;
  let nested: DataVolume;
  let unrelated: string;

  beforeAll(async () => {
    host = await createAwsDssHost({ generate: { files: 100, bytes: 512 * 1024 } });
    nested = await host.cloud.createDataVolume({
      fsType: 'ext4',
      mountPoint: join(host.dataDir, 'managed_folders', 'big_folder'),
      device: '/dev/sdg',
    });
    await writeFile(join(nested.mountPoint, 'model.bin'), 'weights on another EBS volume\n');
    unrelated = await host.cloud.attachBlankVolume('/dev/sdh');
    await startDss(host.info, { log });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('snapshots both as one CreateSnapshots set, excluding the unrelated volume, and copies the whole tree', async () => {
    const mark = host.cloud.proxy.mark();

    const result = await runBackup(host.options(), { log });

    const counts = host.cloud.proxy.countsSince(mark);
    console.log(
      `EC2 API calls for a two-volume backup: ${JSON.stringify(counts)}; pause ${result.manifest.pauseMs} ms`,
    );
    expect(counts).toMatchObject({ CreateSnapshots: 1, CreateVolume: 2, AttachVolume: 2, DeleteVolume: 2 });
    expect(counts.CreateSnapshot).toBeUndefined();
    expect(result.manifest.snapshots.map((s) => s.volumeId).sort()).toEqual(
      [host.volume.volumeId, nested.volumeId].sort(),
    );
    // Two freezes, CreateSnapshots and three image copies by the simulator: under the watchdog's 5 s.
    expect(result.manifest.pauseMs).toBeLessThan(5000);
    const generation = result.manifest.copy!.location;
    expect(await readFile(join(generation, 'managed_folders', 'big_folder', 'model.bin'), 'utf8')).toBe(
      'weights on another EBS volume\n',
    );
    expect(await readFile(join(generation, 'dss-version.json'), 'utf8')).toContain('product_version');
    const frozen = host.cloud.simulator.snapshotLog
      .slice(-3)
      .filter((entry) => entry.alreadyFrozen.length > 0);
    expect(frozen.map((entry) => entry.diskId).sort()).toEqual(
      [host.volume.volumeId, nested.volumeId].sort(),
    );
    expect(host.cloud.simulator.snapshots().some((id) => id.includes(unrelated))).toBe(false);
    expect(await host.state()).toEqual(cleanHostState);
  });

  it('locates the volumes from --volume when the device links cannot tell, and refuses without it', async () => {
    const noLinks = await mkdtemp(join(tmpdir(), 'dssnap-aws-no-links-'));
    try {
      const settings = host.cloud.providerSettings({ deviceDir: noLinks });
      const withOverride = createAwsProvider({
        stateDir: host.stateDir,
        settings: { ...settings, volumes: [host.volume.volumeId, `${nested.volumeId}=${nested.mountPoint}`] },
      });
      const without = createAwsProvider({ stateDir: host.stateDir, settings });

      const located = await withOverride.locate(host.dataDir);
      const refused = await without.locate(host.dataDir).catch((error: unknown) => error);

      expect(located.map((v) => [v.id, v.mountPoint, v.relativePath])).toEqual([
        [host.volume.volumeId, host.volume.mountPoint, 'dss'],
        [nested.volumeId, nested.mountPoint, ''],
      ]);
      expect(located[0]!.attributes).toMatchObject({
        instanceId: host.cloud.instanceId,
        deviceName: '/dev/sdf',
      });
      expect(refused).toMatchObject({
        code: 'UNSUPPORTED',
        message: expect.stringContaining('is not an EBS volume attached to this instance'),
        hint: expect.stringContaining('--volume vol-'),
      });
    } finally {
      await rm(noLinks, { recursive: true, force: true });
    }
  });
});
