/**
 * A permanent fault at every Compute call a gcp backup makes — to take, expose, wait for, release and
 * delete its snapshot: the IAM permission the call needs is missing (Compute answers 403 naming it) —
 * and operations that end DONE with an error. Each run fails at once with a message naming the
 * permission or carrying the operation's error, and undoes what it did; what it could not undo for want
 * of the permission, recovery removes once it is granted. Then DSS runs, nothing is frozen, mounted or
 * left in the project.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { expectRecoveredClean } from '../support/cloud-harness.js';
import { cleanGcpHostState, createGcpDssHost, type GcpDssHost } from '../support/gcp-cloud.js';

const log = silentLogger();

/** Each Compute method a backup calls, in the order of a run, and the permission that denies it. */
const permissionOfMethod: Array<[string, string]> = [
  ['Instances.Get', 'compute.instances.get'],
  ['Disks.CreateSnapshot', 'compute.disks.createSnapshot'],
  ['Snapshots.Get', 'compute.snapshots.get'],
  ['GlobalOperations.Wait', 'compute.globalOperations.get'],
  ['Disks.Get', 'compute.disks.get'],
  ['Disks.Insert', 'compute.disks.create'],
  ['ZoneOperations.Wait', 'compute.zoneOperations.get'],
  ['Instances.AttachDisk', 'compute.instances.attachDisk'],
  ['Instances.DetachDisk', 'compute.instances.detachDisk'],
  ['Disks.Delete', 'compute.disks.delete'],
  ['Snapshots.Delete', 'compute.snapshots.delete'],
];

/** Operations that end DONE with an error, as Google reports them. */
const failedOperations: Array<[string, string, string]> = [
  ['Disks.CreateSnapshot', 'QUOTA_EXCEEDED', "Quota 'SNAPSHOTS' exceeded. Limit: 5000.0 globally."],
  [
    'Disks.Insert',
    'ZONE_RESOURCE_POOL_EXHAUSTED',
    'The zone does not have enough resources available to fulfill the request.',
  ],
  ['Instances.AttachDisk', 'INVALID_USAGE', 'The instance has reached its maximum number of attached disks.'],
];

describe('gcp provider: permanent faults and failed operations', () => {
  let host: GcpDssHost;

  beforeAll(async () => {
    host = await createGcpDssHost();
    await startDss(host.info, { log });
  });
  afterAll(async () => {
    await host?.dispose();
  });

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
      await expectRecoveredClean(host, cleanGcpHostState, log);
    },
    120_000,
  );

  it.each(failedOperations)(
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
      await expectRecoveredClean(host, cleanGcpHostState, log);
    },
    120_000,
  );
});
