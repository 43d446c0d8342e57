/**
 * A snapshot that no longer holds the snapshot instant when the copy ends (an LVM snapshot whose
 * copy-on-write space overflowed, played by the fake provider's checkExposure fault) fails the run:
 * nothing is catalogued, the partial copy is removed, DSS runs, nothing is left to recover.
 * test/integration/lvm.test.ts shows the same on real LVM, with the copy stopped early.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFakeState } from '../../providers/fake/index.js';
import { runBackup } from '../../src/backup/backup.js';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { leftoverJournals } from '../../src/procedure/journal.js';
import { createDssHost, type DssHost } from '../support/dss-host.js';

const log = silentLogger();

describe('a snapshot invalidated under the copy', () => {
  let host: DssHost;

  beforeAll(async () => {
    host = await createDssHost({ storage: 'plain' });
    await startDss(host.info, { log });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('fails the run after the copy, catalogues nothing and undoes everything', async () => {
    const options = host.options({
      mode: 'snapshot',
      provider: 'fake',
      providerOptions: { faults: { checkExposure: { error: 'permanent' } } },
    });

    const run = runBackup(options, { log });

    await expect(run).rejects.toMatchObject({ code: 'PROVIDER_ERROR', exitCode: 1 });
    await expect(run).rejects.toThrow(/Injected permanent fault in fake checkExposure/);
    const state = await readFakeState(host.stateDir);
    expect(state.calls.map((call) => call.method)).toEqual(
      expect.arrayContaining(['expose', 'checkExposure', 'ensureReleased', 'ensureDeleted']),
    );
    // Checked before the exposure was released: the copy was still reading from it.
    const methods = state.calls.map((call) => call.method);
    expect(methods.indexOf('checkExposure')).toBeLessThan(methods.indexOf('ensureReleased'));
    expect(Object.keys(state.snapshots)).toEqual([]);
    expect(Object.keys(state.exposures)).toEqual([]);
    expect(await host.destinationEntries()).toEqual([]);
    expect(await host.dssState()).toBe('running');
    expect(leftoverJournals(host.stateDir)).toEqual([]);
  });

  it('completes when the snapshots hold, having checked them once the copy was done', async () => {
    const result = await runBackup(host.options({ mode: 'snapshot', provider: 'fake' }), { log });

    expect(result.exitCode).toBe(0);
    expect(result.manifest.steps.map((step) => step.kind)).toEqual(
      expect.arrayContaining(['copy', 'check-exposures']),
    );
  });
});
