/**
 * Issue 8, Azure: the RBAC actions the provider really calls — the ARM fake names the action of each
 * request, as ARM authorizes it — during a backup, a snapshot-only rollback point (its snapshot
 * retained), cleanup, list and doctor through the CLI, must be exactly the declared list
 * (providers/azure/permissions.ts) and exactly the custom role of terraform-examples/azure. And
 * `dssnap doctor --provider azure --permissions` shows the list with the effective permissions' verdicts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { azurePermissions } from '../../providers/azure/permissions.js';
import { runBackup } from '../../src/backup/backup.js';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { type AzureDssHost, cleanAzureHostState, createAzureDssHost } from '../support/azure-cloud.js';
import { dssnap } from '../support/cli.js';
import {
  azureActionsCalled,
  azureGranted,
  disagreements,
  missingTableRows,
} from '../support/permission-recorder.js';

const log = silentLogger();

describe('azure: called, declared and granted RBAC actions', () => {
  let host: AzureDssHost;
  let args: string[];
  let env: Record<string, string>;

  beforeAll(async () => {
    host = await createAzureDssHost();
    await startDss(host.info, { log });
    env = host.cloud.cliEnv();
    args = ['--config', await host.configFile(), '--provider', 'azure', '--state-dir', host.stateDir];
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('agree: a backup, a rollback point, cleanup, list and doctor call exactly what is declared and granted', async () => {
    await runBackup(host.options(), { log });
    await runBackup(host.options({ copy: 'none', keepSnapshot: true }), { log });
    for (const command of [['cleanup'], ['list'], ['doctor', '--data-dir', host.dataDir]]) {
      const result = await dssnap([...command, ...args], { env });
      expect(result.exitCode, `${command[0]}: ${result.stdout}${result.stderr}`).toBe(0);
    }
    expect(await host.state()).toEqual(cleanAzureHostState);

    const lists = {
      called: azureActionsCalled(host.cloud.arm.requests),
      declared: azurePermissions.map((p) => p.action),
      granted: await azureGranted(),
    };

    expect(disagreements(lists, { caseInsensitive: true })).toEqual([]);
  }, 180_000); // several runs in one test: room for a loaded CI machine

  it('doctor --permissions: every declared action with why, allowed', async () => {
    const result = await dssnap(['doctor', '--permissions', ...args], { env });

    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^ACTION +STATUS +WHY$/m);
    expect(missingTableRows(result.stdout, azurePermissions, /^allowed$/)).toEqual([]);
  });

  it('doctor --permissions marks an action the role lacks and exits 5', async () => {
    host.cloud.arm.deny('Microsoft.Compute/disks/delete');
    try {
      const result = await dssnap(['doctor', '--permissions', ...args], { env });

      expect(result.exitCode).toBe(5);
      expect(result.stdout).toMatch(
        /^Microsoft\.Compute\/disks\/delete +DENIED +delete the temporary disk$/m,
      );
      expect(result.stdout.match(/ DENIED /g)).toHaveLength(1);
    } finally {
      host.cloud.arm.allow('Microsoft.Compute/disks/delete');
    }
  });
});
