/**
 * The one conformance suite every SnapshotProvider passes (model: restic's backend tests). Each clause
 * of `src/provider/types.ts` that a user relies on is one `it`. Setup gives a provider and a writable
 * DATA_DIR on storage the provider can snapshot; the suite deletes every snapshot it made.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureUnmounted, mountReadOnly } from '../../src/host/mounts.js';
import {
  type Exposure,
  type Snapshot,
  type SnapshotProvider,
  TagKey,
  type Tags,
} from '../../src/provider/types.js';
import { waitForSnapshotsReady } from '../../src/provider/wait.js';

export interface ContractSetup {
  provider: SnapshotProvider;
  /** A writable DATA_DIR that `provider.locate` accepts. */
  dataDir: string;
  /** File access where DATA_DIR lives; default this host. A provider tested inside a VM gives the guest's. */
  files?: ContractFiles;
  cleanup(): Promise<void>;
}

/** What the suite does to files, on the host (or VM) that holds DATA_DIR and sees its exposures. */
export interface ContractFiles {
  writeFile(path: string, text: string): Promise<void>;
  /** Rejects with an error whose `code` is ENOENT when the file does not exist. */
  readFile(path: string): Promise<string>;
  /** Removes a file; already gone is success. */
  rm(path: string): Promise<void>;
  realpath(path: string): Promise<string>;
  /** Mount `device` read-only as the core does, on a new directory; returns the directory. */
  mountReadOnly(device: string, fsType: string): Promise<string>;
  unmount(mountPoint: string): Promise<void>;
}

export const localFiles: ContractFiles = {
  writeFile: (path, text) => fs.writeFile(path, text),
  readFile: (path) => fs.readFile(path, 'utf8'),
  rm: (path) => fs.rm(path, { force: true }),
  realpath: (path) => fs.realpath(path),
  mountReadOnly: async (device, fsType) => {
    const mountPoint = await fs.mkdtemp(join(tmpdir(), 'dssnap-contract-mnt-'));
    await mountReadOnly(device, mountPoint, fsType);
    return mountPoint;
  },
  unmount: (mountPoint) => ensureUnmounted(mountPoint),
};

export function describeProviderContract(name: string, setup: () => Promise<ContractSetup>): void {
  describe(`provider contract: ${name}`, () => {
    let context: ContractSetup | undefined;
    const made: Snapshot[] = [];

    function ctx(): ContractSetup {
      if (!context) throw new Error('contract setup failed; see the beforeAll error');
      return context;
    }

    // The suite's file operations, where DATA_DIR lives (this host unless the setup says otherwise).
    const files = (): ContractFiles => context?.files ?? localFiles;
    const writeFile = (path: string, text: string) => files().writeFile(path, text);
    const readFile = (path: string, _encoding: 'utf8') => files().readFile(path);
    const rm = (path: string, _options: { force: true }) => files().rm(path);
    const realpath = (path: string) => files().realpath(path);

    function tagsFor(runId: string): Tags {
      return { [TagKey.runId]: runId, [TagKey.dataDir]: ctx().dataDir };
    }

    /** Locate + snapshot DATA_DIR under a fresh run id, remembered for the final clean-up. */
    async function snapshotNow(runId = `contract-${randomUUID().slice(0, 8)}`): Promise<Snapshot[]> {
      const { provider, dataDir } = ctx();
      const snapshots = await provider.createSnapshots(await provider.locate(dataDir), tagsFor(runId));
      made.push(...snapshots);
      return snapshots;
    }

    function ready(snapshots: readonly Snapshot[]): Promise<Snapshot[]> {
      return waitForSnapshotsReady(ctx().provider, snapshots, {
        minDelayMs: 10,
        maxDelayMs: 100,
        deadlineMs: 20_000,
      });
    }

    /** DATA_DIR as the exposure shows it: the directory, or the device mounted read-only (as the core does). */
    async function openExposure(exposure: Exposure): Promise<{ root: string; close(): Promise<void> }> {
      const [volume] = await ctx().provider.locate(ctx().dataDir);
      if (exposure.directory)
        return { root: join(exposure.directory, volume!.relativePath), close: async () => {} };
      const mountPoint = await files().mountReadOnly(exposure.device!, exposure.fsType ?? volume!.fsType);
      return { root: join(mountPoint, volume!.relativePath), close: () => files().unmount(mountPoint) };
    }

    beforeAll(async () => {
      context = await setup();
      await writeFile(join(context.dataDir, 'dss-version.json'), '{"product_version":"13.0.0"}\n');
    });

    afterAll(async () => {
      if (!context) return;
      try {
        for (const snapshot of made) await context.provider.ensureDeleted(snapshot);
      } finally {
        await context.cleanup();
      }
    });

    it('locate returns the volume holding DATA_DIR', async () => {
      const { provider, dataDir } = ctx();

      const volumes = await provider.locate(dataDir);

      expect(volumes.length).toBeGreaterThanOrEqual(1);
      const real = await realpath(dataDir);
      const holders = await Promise.all(
        volumes.map((volume) => realpath(join(volume.mountPoint, volume.relativePath))),
      );
      expect(holders).toContain(real);
      for (const volume of volumes) expect(volume.fsType).not.toBe('');
    });

    it('createSnapshots returns tagged snapshots that fix the point in time', async () => {
      const { provider, dataDir } = ctx();
      const runId = `contract-pit-${randomUUID().slice(0, 8)}`;
      await writeFile(join(dataDir, 'before.txt'), 'written before\n');
      await rm(join(dataDir, 'after.txt'), { force: true });

      const snapshots = await snapshotNow(runId);
      await writeFile(join(dataDir, 'before.txt'), 'changed after\n');
      await writeFile(join(dataDir, 'after.txt'), 'written after\n');
      await ready(snapshots);
      const exposure = await provider.expose(snapshots[0]!, { ...tagsFor(runId), [TagKey.role]: 'exposure' });

      expect(snapshots).toHaveLength((await provider.locate(dataDir)).length);
      expect(snapshots[0]).toMatchObject({
        provider: provider.id,
        tags: { [TagKey.runId]: runId, [TagKey.dataDir]: dataDir, [TagKey.role]: 'snapshot' },
      });
      expect(Number.isNaN(Date.parse(snapshots[0]!.createdAt))).toBe(false);
      const opened = await openExposure(exposure);
      try {
        expect(await readFile(join(opened.root, 'before.txt'), 'utf8')).toBe('written before\n');
        await expect(readFile(join(opened.root, 'after.txt'), 'utf8')).rejects.toMatchObject({
          code: 'ENOENT',
        });
      } finally {
        await opened.close();
        await provider.ensureReleased(exposure);
      }
    });

    it('progress reaches ready', async () => {
      const snapshots = await snapshotNow();

      const result = await ready(snapshots);

      expect(result.map((snapshot) => snapshot.id)).toEqual(snapshots.map((snapshot) => snapshot.id));
      expect(await ctx().provider.progress(snapshots[0]!)).toEqual({ state: 'ready' });
    });

    it('expose gives the readable content of DATA_DIR', async () => {
      const { provider } = ctx();
      const [snapshot] = await ready(await snapshotNow());

      const exposure = await provider.expose(snapshot!, {});

      expect(exposure.snapshotId).toBe(snapshot!.id);
      expect(exposure.directory ?? exposure.device).toBeTruthy();
      const opened = await openExposure(exposure);
      try {
        expect(await readFile(join(opened.root, 'dss-version.json'), 'utf8')).toContain('13.0.0');
      } finally {
        await opened.close();
        await provider.ensureReleased(exposure);
      }
    });

    it('ensureReleased and ensureDeleted are idempotent: a second call succeeds', async () => {
      const { provider } = ctx();
      const runId = `contract-idem-${randomUUID().slice(0, 8)}`;
      const [snapshot] = await ready(await snapshotNow(runId));
      const exposure = await provider.expose(snapshot!, tagsFor(runId));

      await provider.ensureReleased(exposure);
      await provider.ensureReleased(exposure);
      await provider.ensureDeleted(snapshot!);
      await provider.ensureDeleted(snapshot!);

      expect(await provider.list({ runId })).toEqual([]);
      expect(await provider.orphans({ runId })).toEqual([]);
    });

    it('list finds a snapshot by run id and by DATA_DIR, and not under another run id', async () => {
      const { provider, dataDir } = ctx();
      const runId = `contract-list-${randomUUID().slice(0, 8)}`;
      const [snapshot] = await snapshotNow(runId);

      const byRun = await provider.list({ runId });
      const byDataDir = await provider.list({ dataDir });
      const other = await provider.list({ runId: `${runId}-other` });

      expect(byRun.map((found) => found.id)).toEqual([snapshot!.id]);
      expect(byRun[0]!.tags[TagKey.runId]).toBe(runId);
      expect(byDataDir.map((found) => found.id)).toContain(snapshot!.id);
      expect(other).toEqual([]);
    });

    it('orphans finds a snapshot that is not retained', async () => {
      const [snapshot] = await snapshotNow();

      const orphans = await ctx().provider.orphans({ runId: snapshot!.tags[TagKey.runId]! });

      expect(orphans).toEqual([expect.objectContaining({ kind: 'snapshot', id: snapshot!.id })]);
    });

    it('retain makes a snapshot retained in list and removes it from orphans', async () => {
      const { provider } = ctx();
      const runId = `contract-retain-${randomUUID().slice(0, 8)}`;
      const [snapshot] = await snapshotNow(runId);

      const retained = await provider.retain(snapshot!, { 'dssnap:reason': 'pre-upgrade' });

      expect(retained.tags).toMatchObject({ [TagKey.retain]: 'true', [TagKey.runId]: runId });
      expect((await provider.list({ runId, retained: true })).map((found) => found.id)).toEqual([
        snapshot!.id,
      ]);
      expect(await provider.list({ runId, retained: false })).toEqual([]);
      expect(await provider.orphans({ runId })).toEqual([]);
    });

    it.each(['progress', 'expose', 'retain'] as const)(
      '%s on a deleted snapshot fails with an error isNotFound recognises',
      async (method) => {
        const { provider } = ctx();
        const [snapshot] = await snapshotNow();
        await provider.ensureDeleted(snapshot!);

        const error = await callOn(provider, method, snapshot!).then(
          () => undefined,
          (thrown: unknown) => thrown,
        );

        expect(error, `${method} on a deleted snapshot must throw`).toBeDefined();
        expect(provider.isNotFound(error)).toBe(true);
      },
    );

    it('declares its default quiesce mode among the supported ones', () => {
      const { provider } = ctx();

      const verdict = provider.supportedQuiesce[provider.defaultQuiesce];

      expect(verdict).toBe(true);
    });
  });
}

function callOn(
  provider: SnapshotProvider,
  method: 'progress' | 'expose' | 'retain',
  snapshot: Snapshot,
): Promise<unknown> {
  switch (method) {
    case 'progress':
      return provider.progress(snapshot);
    case 'expose':
      return provider.expose(snapshot, {});
    case 'retain':
      return provider.retain(snapshot, {});
  }
}
