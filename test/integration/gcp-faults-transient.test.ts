/**
 * A transient fault at every Compute method a gcp backup calls — Google's 429 rateLimitExceeded, 503,
 * Compute's 403 rateLimitExceeded, a connection reset, injected by the fault proxy between the real SDK
 * and the fake — is ridden out: the run completes and leaves nothing. Also the case that makes retries
 * dangerous: an answer lost after Google accepted `createSnapshot` (retried with the same requestId:
 * still one snapshot).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { cleanGcpHostState, createGcpDssHost, type GcpDssHost, type GcpFault } from '../support/gcp-cloud.js';

const log = silentLogger();

/** Every Compute method a backup that keeps its snapshot calls (checked against a real run below). */
const backupMethods = [
  'Disks.CreateSnapshot',
  'Disks.Delete',
  'Disks.Get',
  'Disks.Insert',
  'GlobalOperations.Wait',
  'Instances.AttachDisk',
  'Instances.DetachDisk',
  'Instances.Get',
  'Snapshots.Get',
  'Snapshots.SetLabels',
  'ZoneOperations.Wait',
];

describe('gcp provider: transient faults', () => {
  let host: GcpDssHost;

  beforeAll(async () => {
    host = await createGcpDssHost();
    await startDss(host.info, { log });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  /** Run a backup keeping its snapshot through the faults; expect success, every fault hit, nothing left. */
  async function expectCleanRun(expectedFaults: number): Promise<string[]> {
    const mark = host.cloud.proxy.mark();
    try {
      const result = await runBackup(host.options({ keepSnapshot: true }), { log });

      expect(result.exitCode).toBe(0);
      expect(host.cloud.proxy.since(mark).filter((r) => r.fault)).toHaveLength(expectedFaults);
      expect(await host.state()).toEqual(cleanGcpHostState);
      return result.manifest.snapshots.map((s) => s.id);
    } finally {
      host.cloud.proxy.clearFaults();
    }
  }

  it('a backup keeping its snapshot calls exactly these methods', async () => {
    const mark = host.cloud.proxy.mark();

    await runBackup(host.options({ keepSnapshot: true }), { log });

    expect(Object.keys(host.cloud.proxy.countsSince(mark)).sort()).toEqual(backupMethods);
  }, 120_000);

  it.each<[string, GcpFault, number]>([
    ['the first call of every method answered 429 rateLimitExceeded', 'throttle', 0],
    ['the first call of every method answered 503 backendError', 'unavailable', 0],
    ['the first call of every method answered Compute’s 403 rateLimitExceeded', 'rate-403', 0],
  ])(
    '%s: each is retried, the run completes and leaves nothing',
    async (_what, fault, after) => {
      for (const method of backupMethods) host.cloud.fail(method, fault, { times: 1, after });

      await expectCleanRun(backupMethods.length);
    },
    180_000,
  );

  it('a connection reset on the first mutating calls: retried, the run completes', async () => {
    const mutating = [
      'Disks.CreateSnapshot',
      'Disks.Insert',
      'Instances.AttachDisk',
      'Instances.DetachDisk',
      'Disks.Delete',
    ];
    for (const method of mutating) host.cloud.fail(method, 'reset', { times: 1 });

    await expectCleanRun(mutating.length);
  }, 180_000);

  it('createSnapshot accepted but its answer lost: retried with the same requestId, one snapshot only', async () => {
    const before = host.cloud.compute.snapshots.size;
    host.cloud.fail('Disks.CreateSnapshot', 'reset', { times: 1, when: 'after' });

    const [snapshot] = await expectCleanRun(1);

    expect(host.cloud.compute.snapshots.size).toBe(before + 1);
    expect(host.cloud.compute.snapshots.has(snapshot!)).toBe(true);
    const accepted = host.cloud.compute.calls.filter((c) => c.method === 'Disks.CreateSnapshot').slice(-2);
    expect(accepted.map((c) => c.query.requestId)).toEqual([
      accepted[0]!.query.requestId,
      accepted[0]!.query.requestId,
    ]);
  }, 120_000);
});
