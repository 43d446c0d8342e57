/**
 * A permanent ARM fault at every RBAC action a backup uses: the first request needing the action is
 * refused with 403 AuthorizationFailed, as ARM refuses it. The run fails at once (no retries), its
 * message names the missing action, and everything it did is undone: no snapshot, no temporary disk,
 * no device, nothing mounted or frozen, DSS running.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { azurePermissions } from '../../providers/azure/permissions.js';
import { runBackup } from '../../src/backup/backup.js';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { type AzureDssHost, cleanAzureHostState, createAzureDssHost } from '../support/azure-cloud.js';

const log = silentLogger();

describe('an RBAC action denied during an azure backup', () => {
  let host: AzureDssHost;

  beforeAll(async () => {
    host = await createAzureDssHost();
    await startDss(host.info, { log });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('declares exactly the actions a backup and its clean-up use', async () => {
    const before = host.cloud.arm.requests.length;

    await runBackup(host.options(), { log });

    const used = new Set(host.cloud.arm.requests.slice(before).map((request) => request.action));
    const declared = azurePermissions.map((permission) => permission.action);
    expect([...used].sort()).toEqual(declared.sort());
  });

  it.each(azurePermissions.map((permission) => permission.action))(
    'a refused %s fails the run, names the action and leaves nothing',
    async (action) => {
      host.cloud.arm.deny(action, 1);
      const before = host.cloud.arm.requests.length;

      const run = runBackup(host.options(), { log });

      await expect(run).rejects.toMatchObject({
        code: 'PROVIDER_ERROR',
        exitCode: 1,
        message: expect.stringContaining(`'${action}'`),
      });
      const refused = host.cloud.arm.requests.slice(before).filter((request) => request.status === 403);
      expect(refused.map((request) => request.action)).toEqual([action]);
      // Undone by the run itself: no journal to recover, nothing frozen, DSS running.
      expect(await host.state()).toEqual(cleanAzureHostState);
    },
  );
});
