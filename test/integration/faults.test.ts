/**
 * A fault at every step of a snapshot backup (through the fake provider's fault injection and a copy
 * that fails for real): each run fails with exit 1 and leaves DSS running, no snapshot, no exposure,
 * no partial generation, no journal to recover.
 */
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFakeState } from '../../providers/fake/index.js';
import { runBackup } from '../../src/backup/backup.js';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { leftoverJournals } from '../../src/procedure/journal.js';
import { createDssHost, type DssHost } from '../support/dss-host.js';
import { createLoopVolume, type LoopVolume } from '../support/loop-volume.js';

const log = silentLogger();

describe('faults during a snapshot backup', () => {
  let host: DssHost;

  beforeAll(async () => {
    host = await createDssHost({ storage: 'plain' });
    await startDss(host.info, { log });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  async function expectNothingLeft(): Promise<void> {
    const state = await readFakeState(host.stateDir);
    expect(Object.keys(state.snapshots)).toEqual([]);
    expect(Object.keys(state.exposures)).toEqual([]);
    expect(await host.destinationEntries()).toEqual([]);
    expect(await host.dssState()).toBe('running');
    expect(leftoverJournals(host.stateDir)).toEqual([]);
  }

  it.each([
    ['locate', 'PROVIDER_ERROR'],
    ['createSnapshots', 'PROVIDER_ERROR'],
    ['progress', 'PROVIDER_ERROR'],
    ['expose', 'PROVIDER_ERROR'],
    ['ensureReleased', 'PROVIDER_ERROR'],
  ])('a permanent failure of %s fails the run and undoes everything', async (method, code) => {
    const options = host.options({
      mode: 'snapshot',
      provider: 'fake',
      providerOptions: { faults: { [method]: { error: 'permanent', times: 1 } } },
    });

    const run = runBackup(options, { log });

    await expect(run).rejects.toMatchObject({ code, exitCode: 1 });
    await expectNothingLeft();
  });

  it('fails fast when the platform reports the snapshot failed, instead of waiting to the deadline', async () => {
    const started = Date.now();

    const run = runBackup(
      host.options({
        mode: 'snapshot',
        provider: 'fake',
        providerOptions: { progressFailure: 'disk error on the snapshot' },
      }),
      { log },
    );

    await expect(run).rejects.toThrow(/disk error on the snapshot/);
    expect(Date.now() - started).toBeLessThan(10_000);
    await expectNothingLeft();
  });

  it('retries transient provider errors and completes', async () => {
    const options = host.options({
      mode: 'snapshot',
      provider: 'fake',
      providerOptions: {
        faults: { progress: { error: 'transient', times: 2 }, expose: { error: 'transient', times: 1 } },
      },
    });

    const result = await runBackup(options, { log });

    expect(result.exitCode).toBe(0);
    expect(Object.keys((await readFakeState(host.stateDir)).snapshots)).toEqual([]);
    // Leave the destination as the other cases expect it.
    await rm(result.manifest.copy!.location, { recursive: true });
  });

  it('keeps the journal for dssnap recover when a snapshot cannot be deleted', async () => {
    const options = host.options({
      mode: 'snapshot',
      provider: 'fake',
      providerOptions: { faults: { ensureDeleted: { error: 'permanent' } } },
    });

    const run = runBackup(options, { log });

    await expect(run).rejects.toMatchObject({ exitCode: 1 });
    expect(Object.keys((await readFakeState(host.stateDir)).snapshots)).toHaveLength(1);
    expect(leftoverJournals(host.stateDir)).toHaveLength(1);
    expect(await host.destinationEntries()).toEqual([]);
    expect(await host.dssState()).toBe('running');
    // Clean up by hand for the next cases (the CLI tests cover `dssnap recover` in another process).
    const { createFakeProvider } = await import('../../providers/fake/index.js');
    const provider = await createFakeProvider({ stateDir: host.stateDir });
    for (const snapshot of await provider.list({})) await provider.ensureDeleted(snapshot);
    const { archiveJournal } = await import('../../src/procedure/journal.js');
    for (const path of leftoverJournals(host.stateDir)) archiveJournal(path);
  });

  describe('a copy that fails for real (destination full)', () => {
    let small: LoopVolume;
    beforeAll(async () => {
      small = await createLoopVolume({ fsType: 'ext4', sizeMb: 8 });
    });
    afterAll(async () => {
      await small?.dispose();
    });

    it('fails with COPY_FAILED and leaves no partial generation and no snapshot', async () => {
      const options = host.options({ mode: 'snapshot', provider: 'fake', to: small.mountPoint, force: true });

      const run = runBackup(options, { log });

      await expect(run).rejects.toMatchObject({ code: 'COPY_FAILED', exitCode: 1 });
      expect((await readdir(small.mountPoint)).filter((n) => n !== 'lost+found' && n !== '.dssnap')).toEqual(
        [],
      );
      await expectNothingLeft();
    });

    it('refuses before changing anything when the estimate does not fit (no --force)', async () => {
      const big = join(host.dataDir, 'managed_datasets', 'big-for-space-test.bin');
      await writeFile(big, Buffer.alloc(12 * 1024 * 1024, 7));
      const snapshotCalls = async () =>
        (await readFakeState(host.stateDir)).calls.filter((c) => c.method === 'createSnapshots').length;
      const callsBefore = await snapshotCalls();
      try {
        const run = runBackup(host.options({ mode: 'snapshot', provider: 'fake', to: small.mountPoint }), {
          log,
        });

        await expect(run).rejects.toMatchObject({ code: 'NO_SPACE', exitCode: 5 });
        await expect(run).rejects.toThrow(/needs about .* are free/);
        expect(await snapshotCalls()).toBe(callsBefore);
        await expectNothingLeft();
      } finally {
        await rm(big, { force: true });
      }
    });
  });
});
