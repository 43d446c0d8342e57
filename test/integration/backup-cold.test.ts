/**
 * Cold backups: the running-jobs check through a fake of the DSS public API, `bin/dss stop`, a real
 * copy, `bin/dss start` — and DSS started again whatever fails.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { startDss, stopDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { leftoverJournals } from '../../src/procedure/journal.js';
import { type FakeDssApi, startFakeDssApi } from '../fakes/dss-api.js';
import { stopHangFile } from '../fixtures/dss-script.js';
import { createDssHost, type DssHost } from '../support/dss-host.js';
import { compareTrees, formatDifferences } from '../support/tree-compare.js';

const log = silentLogger();
const apiKey = 'test-api-key-do-not-log';

describe('cold backup', () => {
  let host: DssHost;
  let api: FakeDssApi;
  const env = { DSSNAP_DSS_API_KEY: apiKey };

  beforeAll(async () => {
    host = await createDssHost({ storage: 'plain' });
    api = await startFakeDssApi({ apiKey });
    api.setProjects(['SALES', 'CHURN']);
  });
  afterEach(async () => {
    await rm(join(host.dataDir, stopHangFile), { force: true });
  });
  afterAll(async () => {
    await api?.close();
    await host?.dispose();
  });

  it('stops DSS for the copy, starts it again, and the copy equals DATA_DIR', async () => {
    await startDss(host.info, { log });
    const pidBefore = await readFile(join(host.dataDir, 'run/supervisord.pid'), 'utf8');

    const result = await runBackup(host.options({ mode: 'cold', dssUrl: api.url }), { log, env });

    expect(result.exitCode).toBe(0);
    expect(await host.dssState()).toBe('running');
    expect(await readFile(join(host.dataDir, 'run/supervisord.pid'), 'utf8')).not.toBe(pidBefore);
    // The file index is hashed after DSS is started again: it is no part of the pause.
    expect(result.manifest.steps.map((s) => s.kind)).toEqual([
      'check-jobs',
      'stop-dss',
      'copy',
      'hash-files',
    ]);
    expect(result.manifest.pauseMs).toBeGreaterThan(result.manifest.steps[2]!.durationMs);
    await stopDss(host.info, { log });
    // The backend log grew after the restart; everything else is as it was while DSS was stopped.
    const differences = await compareTrees(host.dataDir, result.manifest.copy!.location, {
      ignore: ['tmp', 'caches', 'data-catalog', 'run/backend.log', 'run/supervisord.pid'],
    });
    const restartEffects = (d: { path: string; kind: string }) => d.path === 'run' && d.kind === 'mtime';
    expect(formatDifferences(differences.filter((d) => !restartEffects(d)))).toBe(formatDifferences([]));
    expect(leftoverJournals(host.stateDir)).toEqual([]);
  });

  it('refuses to stop DSS while a job runs, and changes nothing', async () => {
    await startDss(host.info, { log });
    api.addJob('SALES', { id: 'build_2026', state: 'RUNNING' });
    const before = await host.destinationEntries();
    try {
      const run = runBackup(host.options({ mode: 'cold', dssUrl: api.url }), { log, env });

      await expect(run).rejects.toMatchObject({ code: 'JOBS_RUNNING', exitCode: 5 });
      await expect(run).rejects.toThrow(/build_2026/);
      await expect(run).rejects.not.toThrow(new RegExp(apiKey));
      expect(await host.dssState()).toBe('running');
      expect(await host.destinationEntries()).toEqual(before);
    } finally {
      api.setJobState('SALES', 'build_2026', 'DONE');
    }
  });

  it('waits for running jobs with --wait-for-jobs, then backs up', async () => {
    await startDss(host.info, { log });
    api.addJob('CHURN', { id: 'train_1', state: 'RUNNING' });
    setTimeout(() => api.setJobState('CHURN', 'train_1', 'DONE'), 1500);

    const result = await runBackup(host.options({ mode: 'cold', dssUrl: api.url, waitForJobs: '20s' }), {
      log,
      env,
    });

    expect(result.exitCode).toBe(0);
    expect(result.manifest.steps[0]!.durationMs).toBeGreaterThanOrEqual(1000);
    expect(await host.dssState()).toBe('running');
  });

  it('refuses a cold backup without a way to check jobs, unless --force', async () => {
    await startDss(host.info, { log });
    const before = await host.destinationEntries();

    const run = runBackup(host.options({ mode: 'cold' }), { log, env: {} });

    await expect(run).rejects.toMatchObject({ code: 'JOBS_RUNNING', exitCode: 5 });
    await expect(run).rejects.toThrow(/no --dss-url/);
    expect(await host.dssState()).toBe('running');
    expect(await host.destinationEntries()).toEqual(before);
  });

  it('starts DSS again and fails with exit 1 when stop times out, leaving no partial copy', async () => {
    await startDss(host.info, { log });
    await writeFile(join(host.dataDir, stopHangFile), '');
    const before = await host.destinationEntries();

    const run = runBackup(host.options({ mode: 'cold', force: true, stopTimeout: '2s' }), { log });

    await expect(run).rejects.toMatchObject({ code: 'DSS_CONTROL_FAILED', exitCode: 1 });
    await rm(join(host.dataDir, stopHangFile), { force: true });
    expect(await host.dssState()).toBe('running');
    expect(await host.destinationEntries()).toEqual(before);
    expect(leftoverJournals(host.stateDir)).toEqual([]);
  });

  it('writes the classic gzip archive with --format tar --compression gzip', async () => {
    await startDss(host.info, { log });

    const result = await runBackup(
      host.options({ mode: 'cold', force: true, format: 'tar', compression: 'gzip' }),
      { log },
    );

    expect(result.manifest.copy!.location).toMatch(/\.tar\.gz$/);
    expect(await host.dssState()).toBe('running');
  });
});
