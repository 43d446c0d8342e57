/**
 * DATA_DIR spread over several filesystems: a filesystem mounted inside DATA_DIR is either snapshotted
 * and mounted back into place for the copy, or the run is refused — never silently left out.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFakeState } from '../../providers/fake/index.js';
import { runBackup, volumesInMountOrder } from '../../src/backup/backup.js';
import { run } from '../../src/host/exec.js';
import { isMountPoint } from '../../src/host/mounts.js';
import { silentLogger } from '../../src/log.js';
import { createDssHost, type DssHost } from '../support/dss-host.js';
import { createLoopVolume, type LoopVolume } from '../support/loop-volume.js';

const log = silentLogger();

describe('a filesystem mounted inside DATA_DIR', () => {
  let host: DssHost;
  let inner: LoopVolume;
  let nestedPath: string;

  beforeAll(async () => {
    host = await createDssHost({ storage: 'plain' });
    inner = await createLoopVolume({ fsType: 'ext4', sizeMb: 32 });
    nestedPath = join(host.dataDir, 'managed_folders', 'big_folder');
    await mkdir(nestedPath, { recursive: true });
    await run('mount', ['--bind', inner.mountPoint, nestedPath]);
    await writeFile(join(nestedPath, 'model.bin'), 'weights on another disk');
  });
  afterAll(async () => {
    if (nestedPath) await run('umount', [nestedPath]).catch(() => undefined);
    await inner?.dispose();
    await host?.dispose();
  });

  it('is refused when the provider does not snapshot it', async () => {
    const run_ = runBackup(host.options({ mode: 'snapshot', provider: 'fake' }), { log });

    await expect(run_).rejects.toMatchObject({ code: 'UNSUPPORTED', exitCode: 5 });
    await expect(run_).rejects.toThrow(/big_folder\) and the fake provider does not snapshot them/);
    expect(await host.destinationEntries()).toEqual([]);
  });

  it('is snapshotted with the rest and mounted into place for one copy, then unmounted', async () => {
    const options = host.options({
      mode: 'snapshot',
      provider: 'fake',
      providerOptions: { nestedVolumes: [nestedPath] },
    });

    const result = await runBackup(options, { log });

    expect(result.manifest.snapshots).toHaveLength(2);
    const generation = result.manifest.copy!.location;
    expect(await readFile(join(generation, 'managed_folders/big_folder/model.bin'), 'utf8')).toBe(
      'weights on another disk',
    );
    expect(Object.keys((await readFakeState(host.stateDir)).snapshots)).toEqual([]);
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(host.mountRoot).catch(() => [])).toEqual([]);
    expect(await isMountPoint(nestedPath)).toBe(true);
    await rm(generation, { recursive: true });
  });
});

describe('volumesInMountOrder', () => {
  const volume = (mountPoint: string) => ({ id: mountPoint, mountPoint, relativePath: '', fsType: 'xfs' });

  it('puts the volume holding DATA_DIR first, then nested ones outermost first', () => {
    const volumes = [volume('/data/dss/a/b'), volume('/data'), volume('/data/dss/a')];

    expect(volumesInMountOrder(volumes, '/data/dss').map((v) => v.mountPoint)).toEqual([
      '/data',
      '/data/dss/a',
      '/data/dss/a/b',
    ]);
  });

  it('fails when no volume holds DATA_DIR itself', () => {
    expect(() => volumesInMountOrder([volume('/data/dss/a')], '/data/dss')).toThrow(
      /None of the volumes located holds/,
    );
  });
});
