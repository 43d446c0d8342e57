/**
 * A permanent fault at every Compute call a gcp backup makes to wait for, release and delete what it
 * created: the IAM permission the call needs is missing (Compute answers 403 naming it); and operations
 * that end DONE with an error.
 * Each run fails at once with a message naming the permission or carrying the operation's error, undoes
 * what it did — and what it could not undo for want of the permission, recovery removes once it is
 * granted — leaving DSS running, nothing frozen, nothing mounted, nothing in the project.
 */
import { basename } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { recoverRun } from '../../src/backup/recover.js';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { leftoverJournals } from '../../src/procedure/journal.js';
import { cleanGcpHostState, createGcpDssHost, type GcpDssHost } from '../support/gcp-cloud.js';

const log = silentLogger();

/** One permission per Compute method a backup calls: denying it fails that call. */
const permissionOfMethod: Array<[string, string]> = [
  ['ZoneOperations.Wait', 'compute.zoneOperations.get'],
  ['Instances.DetachDisk', 'compute.instances.detachDisk'],
  ['Disks.Delete', 'compute.disks.delete'],
  ['Snapshots.Delete', 'compute.snapshots.delete'],
  ['GlobalOperations.Wait', 'compute.globalOperations.get'],
];

describe('gcp provider: permanent faults when waiting and releasing, failed operations', () => {
  let host: GcpDssHost;

  beforeAll(async () => {
    host = await createGcpDssHost();
    await startDss(host.info, { log });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  /** Recover the runs this process left (they ran here, so by id), then expect nothing left. */
  async function expectRecoveredClean(): Promise<void> {
    for (const journal of leftoverJournals(host.stateDir))
      await recoverRun(host.stateDir, basename(journal, '.jsonl'), log);
    expect(await host.state()).toEqual(cleanGcpHostState);
  }

  it.each(permissionOfMethod)(
    '%s denied (%s missing): the run fails naming it, and everything is undone',
    async (method, permission) => {
      host.cloud.compute.denied.add(permission);
      try {
        const attempt = runBackup(host.options(), { log });

        await expect(attempt).rejects.toMatchObject({
          code: 'PROVIDER_ERROR',
          message: expect.stringContaining(`the credentials lack the IAM permission ${permission}`),
        });
        expect(host.cloud.compute.calls.filter((c) => c.status === 403).map((c) => c.method)).toContain(
          method,
        );
        const stuck = await host.state();
        expect({ dss: stuck.dss, writable: stuck.writable, partials: stuck.partials }).toEqual({
          dss: 'running',
          writable: true,
          partials: [],
        });
      } finally {
        host.cloud.compute.denied.clear();
      }
      await expectRecoveredClean();
    },
    120_000,
  );

  it.each([
    ['Disks.CreateSnapshot', 'QUOTA_EXCEEDED', "Quota 'SNAPSHOTS' exceeded. Limit: 5000.0 globally."],
    [
      'Disks.Insert',
      'ZONE_RESOURCE_POOL_EXHAUSTED',
      'The zone does not have enough resources available to fulfill the request.',
    ],
    [
      'Instances.AttachDisk',
      'INVALID_USAGE',
      'The instance has reached its maximum number of attached disks.',
    ],
  ])(
    'an operation of %s that ends with %s fails the run with its message, and everything is undone',
    async (method, code, message) => {
      host.cloud.compute.injectOperationError({ method, code, message });
      try {
        const attempt = runBackup(host.options(), { log });

        await expect(attempt).rejects.toMatchObject({
          message: expect.stringContaining(`${code}: ${message}`),
        });
      } finally {
        host.cloud.compute.clearInjections();
      }
      await expectRecoveredClean();
    },
    120_000,
  );
});
