/**
 * A permanent fault at every Compute call a gcp backup makes to take and expose its snapshot: the IAM
 * permission the call needs is missing (Compute answers 403 naming it). Waiting, releasing, deleting and
 * failed operations: gcp-faults-release.test.ts. Each run fails at once with a message naming the
 * permission, undoes what it did — and what it could not undo for want of the permission, recovery
 * removes once it is granted — leaving DSS running, nothing frozen, nothing mounted, nothing in the
 * project.
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
  ['Instances.Get', 'compute.instances.get'],
  ['Disks.CreateSnapshot', 'compute.disks.createSnapshot'],
  ['Snapshots.Get', 'compute.snapshots.get'],
  ['Disks.Get', 'compute.disks.get'],
  ['Disks.Insert', 'compute.disks.create'],
  ['Instances.AttachDisk', 'compute.instances.attachDisk'],
];

describe('gcp provider: permanent faults', () => {
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
});
