import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectProvider } from '../../src/provider/registry.js';
import { type SnapshotProvider, TagKey } from '../../src/provider/types.js';
import { createLoopVolume, type LoopVolume } from '../../test/support/loop-volume.js';
import { createBtrfsProvider, defaultSnapshotDirName } from './index.js';
import { readSidecar, sidecarPathOf, writeSidecar } from './sidecar.js';

describe('btrfs provider on real loop volumes', () => {
  let btrfs: LoopVolume;
  let xfs: LoopVolume;
  let stateDir: string;
  let provider: SnapshotProvider;
  let dataDir: string;

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'dssnap-btrfs-test-'));
    btrfs = await createLoopVolume({ fsType: 'btrfs', subvolume: 'dss-data' });
    xfs = await createLoopVolume({ fsType: 'xfs' });
    dataDir = btrfs.subvolumePath!;
    await mkdir(join(dataDir, 'config'));
    await writeFile(join(dataDir, 'config', 'general-settings.json'), '{}\n');
    provider = createBtrfsProvider({ stateDir });
  });

  afterAll(async () => {
    await btrfs?.dispose();
    await xfs?.dispose();
    await rm(stateDir, { recursive: true, force: true });
  });

  it('locates DATA_DIR as its own subvolume', async () => {
    const [volume] = await provider.locate(dataDir);

    expect(volume).toMatchObject({
      id: dataDir,
      mountPoint: dataDir,
      relativePath: '',
      fsType: 'btrfs',
      device: btrfs.device,
    });
    expect(volume!.attributes).toMatchObject({ mountRoot: btrfs.mountPoint, subvolumePath: 'dss-data' });
  });

  it('refuses a plain directory inside a subvolume, with a hint saying how to make it one', async () => {
    const plain = join(btrfs.mountPoint, 'plain-dir');
    await mkdir(plain, { recursive: true });

    const error = await provider.locate(plain).catch((thrown: unknown) => thrown);

    expect(error).toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringContaining('not the root of its own subvolume'),
    });
    expect(error).toMatchObject({ hint: expect.stringContaining(`btrfs subvolume create ${plain}.new`) });
  });

  it("refuses the filesystem's top-level subvolume", async () => {
    const error = await provider.locate(btrfs.mountPoint).catch((thrown: unknown) => thrown);

    expect(error).toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringContaining('top-level subvolume (id 5)'),
    });
    expect(error).toMatchObject({ hint: expect.stringContaining('btrfs subvolume create') });
  });

  it('refuses a path on a non-btrfs filesystem', async () => {
    const onXfs = join(xfs.mountPoint, 'dss-data');
    await mkdir(onXfs, { recursive: true });

    const error = await provider.locate(onXfs).catch((thrown: unknown) => thrown);

    expect(error).toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringContaining('on a xfs filesystem'),
    });
    expect(error).toMatchObject({ hint: expect.stringContaining('--mode cold') });
  });

  it('takes a read-only snapshot: writing into it fails', async () => {
    const [snapshot] = await provider.createSnapshots(await provider.locate(dataDir), {
      [TagKey.runId]: 'ro-test',
    });
    const exposure = await provider.expose(snapshot!, {});

    const error = await writeFile(join(exposure.directory!, 'config', 'new.json'), '{}').catch(
      (thrown: unknown) => thrown,
    );

    expect(error).toMatchObject({ code: 'EROFS' });
    expect(exposure.resources).toEqual([]);
    await provider.ensureDeleted(snapshot!);
  });

  it('names the snapshot after DATA_DIR, time and run id, in a 0700 directory with a sidecar', async () => {
    const [snapshot] = await provider.createSnapshots(await provider.locate(dataDir), {
      [TagKey.runId]: 'run42',
    });

    const snapshotDir = join(btrfs.mountPoint, defaultSnapshotDirName);
    expect(snapshot!.id).toMatch(new RegExp(`^${snapshotDir}/dss-data@\\d{8}T\\d{9}Z-run42$`));
    expect((await stat(snapshotDir)).mode & 0o777).toBe(0o700);
    expect(await readSidecar(snapshot!.id)).toMatchObject({
      volumeId: dataDir,
      tags: { [TagKey.runId]: 'run42' },
    });
    await provider.ensureDeleted(snapshot!);
    expect(existsSync(snapshot!.id)).toBe(false);
    expect(existsSync(sidecarPathOf(snapshot!.id))).toBe(false);
  });

  it('reports a sidecar left without its subvolume (crash between the two) as an orphan that cleanup removes', async () => {
    const path = join(btrfs.mountPoint, defaultSnapshotDirName, 'dss-data@20250101T000000000Z-crashed');
    const tags = { [TagKey.runId]: 'crashed', [TagKey.dataDir]: dataDir, [TagKey.role]: 'snapshot' };
    await writeSidecar(path, {
      id: path,
      provider: 'btrfs',
      volumeId: dataDir,
      createdAt: '2025-01-01T00:00:00.000Z',
      tags,
    });

    const orphans = await provider.orphans({ dataDir });
    const listed = await provider.list({ runId: 'crashed' });
    await provider.ensureDeleted({
      id: orphans[0]!.id,
      provider: 'btrfs',
      volumeId: dataDir,
      createdAt: '',
      tags: {},
    });

    expect(orphans).toEqual([
      expect.objectContaining({
        kind: 'snapshot',
        id: path,
        attributes: expect.objectContaining({ exists: 'false' }),
      }),
    ]);
    expect(listed).toEqual([]);
    expect(await provider.orphans({ dataDir })).toEqual([]);
  });

  it('refuses to delete a writable subvolume such as DATA_DIR itself', async () => {
    const error = await provider
      .ensureDeleted({ id: dataDir, provider: 'btrfs', volumeId: dataDir, createdAt: '', tags: {} })
      .catch((thrown: unknown) => thrown);

    expect(error).toMatchObject({ message: expect.stringContaining('not a read-only btrfs snapshot') });
    expect(existsSync(join(dataDir, 'config', 'general-settings.json'))).toBe(true);
  });

  it('finds snapshots of every mounted btrfs filesystem when the selector has no DATA_DIR', async () => {
    const [snapshot] = await provider.createSnapshots(await provider.locate(dataDir), {
      [TagKey.runId]: 'no-selector',
    });

    const listed = await provider.list({});

    expect(listed.map((found) => found.id)).toContain(snapshot!.id);
    await provider.ensureDeleted(snapshot!);
  });

  it.each([
    [
      'on another filesystem',
      () => join(xfs.mountPoint, 'snapshots'),
      'is not on the filesystem of DATA_DIR',
    ],
    ['inside DATA_DIR', () => join(dataDir, 'snapshots'), 'is inside DATA_DIR'],
  ])('refuses a snapshotDir %s', async (_case, snapshotDir, message) => {
    const misconfigured = createBtrfsProvider({ stateDir, settings: { snapshotDir: snapshotDir() } });

    const error = await misconfigured
      .createSnapshots(await misconfigured.locate(dataDir), { [TagKey.runId]: 'bad-dir' })
      .catch((thrown: unknown) => thrown);

    expect(error).toMatchObject({ code: 'UNSUPPORTED', message: expect.stringContaining(message) });
    expect(await provider.list({ runId: 'bad-dir' })).toEqual([]);
  });

  it('uses a configured snapshotDir on the same filesystem', async () => {
    const snapshotDir = join(btrfs.mountPoint, 'custom-snapshots');
    const custom = createBtrfsProvider({ stateDir, settings: { snapshotDir } });

    const [snapshot] = await custom.createSnapshots(await custom.locate(dataDir), {
      [TagKey.runId]: 'custom',
    });

    expect(basename(join(snapshot!.id, '..'))).toBe('custom-snapshots');
    expect((await custom.list({ runId: 'custom' })).map((found) => found.id)).toEqual([snapshot!.id]);
    await custom.ensureDeleted(snapshot!);
  });

  it('is what detectProvider picks for a DATA_DIR on btrfs, and not for one on xfs', async () => {
    const picked = await detectProvider(dataDir);
    const refused = await detectProvider(xfs.mountPoint).catch((thrown: unknown) => thrown);

    expect(picked).toBe('btrfs');
    expect(refused).toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringContaining('xfs filesystem'),
    });
  });
});

describe('btrfs provider declarations and settings', () => {
  it('refuses fsfreeze with the reason, and defaults to none', () => {
    const provider = createBtrfsProvider({ stateDir: tmpdir() });

    const verdict = provider.supportedQuiesce.fsfreeze;

    expect(provider.defaultQuiesce).toBe('none');
    expect(verdict).toEqual(expect.stringContaining('waits for the thaw forever'));
  });

  it.each([
    [{ snapshotDir: 'relative/dir' }, 'setting \'snapshotDir\' = "relative/dir": must be an absolute path'],
    [{ snapshotDirectory: '/x' }, "unknown setting(s) 'snapshotDirectory' (valid: snapshotDir)"],
  ])('rejects bad settings %j', (settings, message) => {
    const create = () => createBtrfsProvider({ stateDir: tmpdir(), settings });

    expect(create).toThrow(message);
  });
});
