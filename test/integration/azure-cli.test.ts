/**
 * The azure provider through the built CLI, as a user runs it on an Azure VM with a managed identity:
 * backup, snapshot-only rollback point, list, doctor (identity, credential, VM, RBAC actions), a run
 * killed with SIGKILL mid-copy cleaned up by `dssnap cleanup --provider azure` and `dssnap recover`, a
 * permission missing for good, and a VM without a managed identity. The child processes use the real
 * default credential chain: the managed identity token comes from the fake IMDS and must never show in
 * any output.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { type AzureDssHost, cleanAzureHostState, createAzureDssHost } from '../support/azure-cloud.js';
import { type CliResult, dssnap } from '../support/cli.js';
import { killBackupMidCopy } from '../support/cloud-harness.js';

const log = silentLogger();

function expectNoToken(result: CliResult): void {
  expect(result.stdout).not.toContain('fake-mi-token');
  expect(result.stderr).not.toContain('fake-mi-token');
}

describe('dssnap --provider azure (CLI)', () => {
  let host: AzureDssHost;
  let config: string;
  let args: string[];
  let env: Record<string, string>;

  beforeAll(async () => {
    // Big enough for the copy to take a moment, so a SIGKILL lands in the middle of it.
    host = await createAzureDssHost({ generate: { files: 1_500, bytes: 60 * 1024 ** 2 } });
    await startDss(host.info, { log });
    config = await host.configFile();
    env = host.cloud.cliEnv();
    args = host.cliArgs(config);
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('backs up from a managed-disk snapshot and logs no token, even at debug level', async () => {
    const result = await dssnap(
      [
        'backup',
        ...args,
        ...['--to', host.destination, '--mount-root', host.mountRoot, '--exclude-class', 'data'],
        ...['--log-level', 'debug', '--log-format', 'json'],
      ],
      { env: { ...env, DSSNAP_LOG_LEVEL: 'debug' } },
    );

    expect(result.stderr).not.toMatch(/"level":(50|60)/);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/mode +snapshot via azure, quiesce fsfreeze/);
    expect(result.stdout).toMatch(
      /snapshot +\/subscriptions\/.*\/snapshots\/dssnap-dss-data-0-\S+ \(azure\) deleted/,
    );
    expectNoToken(result);
    expect(await host.state()).toEqual(cleanAzureHostState);
  });

  it('takes a full (--full-snapshot) snapshot-only rollback point of the --disk given, that `dssnap list --provider azure` shows', async () => {
    const before = host.cloud.arm.requests.length;
    const backup = await dssnap(
      [
        ...['backup', ...args, '--copy', 'none', '--keep-snapshot', '--json'],
        ...['--full-snapshot', '--disk', host.disk.diskId],
      ],
      { env },
    );
    const list = await dssnap(
      ['list', '--provider', 'azure', '--config', config, '--state-dir', host.stateDir],
      {
        env,
      },
    );

    expect(backup.exitCode).toBe(0);
    const snapshotId = (JSON.parse(backup.stdout) as { manifest: { snapshots: Array<{ id: string }> } })
      .manifest.snapshots[0]!.id;
    expect(list.exitCode).toBe(0);
    expect(list.stdout).toMatch(/Retained azure snapshots: 1/);
    expect(list.stdout).toContain(`${snapshotId}  (${host.dataDir})`);
    const put = host.cloud.arm.requests
      .slice(before)
      .find((r) => r.method === 'PUT' && /snapshots/.test(r.path));
    const sent = put?.body as {
      properties?: { incremental?: boolean; creationData?: { sourceResourceId?: string } };
    };
    expect(sent.properties?.incremental).toBe(false);
    expect(sent.properties?.creationData?.sourceResourceId?.toLowerCase()).toBe(
      host.disk.diskId.toLowerCase(),
    );
  });

  it('doctor checks the VM identity, the credential, the VM and every RBAC action', async () => {
    const result = await dssnap(['doctor', ...args], { env });

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(
      / ok +azure vm identity +VM dss-vm in resource group dss-rg, westeurope zone 2/,
    );
    expect(result.stdout).toMatch(/ ok +azure credential +a token for Azure Resource Manager was issued/);
    expect(result.stdout).toMatch(/ ok +azure vm +1 data disk\(s\) attached \(LUN 0\)/);
    expect(result.stdout).toMatch(/ ok +azure permissions \(dss-rg\) +all 10 actions allowed/);
    expect(result.stdout).toMatch(/ ok +volume +\/subscriptions\/.*\/disks\/dss-data-0 \(xfs at /);
    expectNoToken(result);
  });

  it('doctor names a missing RBAC action and exits 5', async () => {
    host.cloud.arm.deny('Microsoft.Compute/snapshots/delete');
    try {
      const result = await dssnap(['doctor', ...args], { env });

      expect(result.exitCode).toBe(5);
      expect(result.stdout).toMatch(
        /FAIL +azure permissions \(dss-rg\) +missing: Microsoft\.Compute\/snapshots\/delete \(/,
      );
    } finally {
      host.cloud.arm.allow('Microsoft.Compute/snapshots/delete');
    }
  });

  it('after a SIGKILL mid-copy, cleanup --provider azure removes the disk and snapshot, recover the rest', async () => {
    await killBackupMidCopy(
      [...args, '--to', host.destination, '--mount-root', host.mountRoot],
      host.destination,
      {
        env,
      },
    );
    const killed = await host.state();
    expect(killed.cloud.disks).toHaveLength(1);
    expect(killed.cloud.snapshots).toHaveLength(1);
    expect(killed.cloud.devices).toHaveLength(1);
    expect(killed.mounts).toHaveLength(1);
    const cleanupArgs = ['cleanup', '--provider', 'azure', '--config', config, '--state-dir', host.stateDir];

    const dryRun = await dssnap([...cleanupArgs, '--dry-run'], { env });
    const cleanup = await dssnap(cleanupArgs, { env });

    expect(dryRun.exitCode).toBe(0);
    expect(dryRun.stdout).toMatch(new RegExp(`would delete: exposure \\S+/disks/${killed.cloud.disks[0]} `));
    expect(dryRun.stdout).toMatch(
      new RegExp(`would delete: snapshot \\S+/snapshots/${killed.cloud.snapshots[0]} `),
    );
    expect(cleanup.exitCode).toBe(0);
    expect(cleanup.stdout).toMatch(new RegExp(`deleted: exposure \\S+/disks/${killed.cloud.disks[0]} `));
    const cleaned = await host.state();
    // The mount the killed run left is gone too: cleanup unmounts a temporary disk before detaching it.
    expect({ cloud: cleaned.cloud, mounts: cleaned.mounts }).toEqual({
      cloud: cleanAzureHostState.cloud,
      mounts: [],
    });
    const recovered = await dssnap(['recover', '--state-dir', host.stateDir], { env });
    expect(recovered.exitCode).toBe(0);
    expect(await host.state()).toEqual(cleanAzureHostState);
  });

  it('a permission missing for good fails the run (exit 1) naming it; recover cleans up once it is granted', async () => {
    host.cloud.arm.deny('Microsoft.Compute/disks/delete');

    const result = await dssnap(
      [
        'backup',
        ...args,
        ...['--to', host.destination, '--mount-root', host.mountRoot, '--exclude-class', 'data'],
      ],
      { env },
    );

    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(
      "the identity lacks the RBAC permission 'Microsoft.Compute/disks/delete' (AuthorizationFailed)",
    );
    expect(result.stderr).toMatch(
      /hint: Grant 'Microsoft\.Compute\/disks\/delete' to the VM's managed identity/,
    );
    const stuck = await host.state();
    expect({
      disks: stuck.cloud.disks.length,
      journals: stuck.journals,
      dss: stuck.dss,
      writable: stuck.writable,
    }).toEqual({ disks: 1, journals: 1, dss: 'running', writable: true });
    host.cloud.arm.allow('Microsoft.Compute/disks/delete');
    const recovered = await dssnap(['recover', '--state-dir', host.stateDir], { env });
    expect(recovered.exitCode).toBe(0);
    expect(await host.state()).toEqual(cleanAzureHostState);
  });

  it('without a managed identity, fails before creating anything, saying where credentials come from', async () => {
    host.cloud.imds.noIdentity(true);
    try {
      const result = await dssnap(['backup', ...args, '--copy', 'none', '--keep-snapshot'], { env });

      expect(result.exitCode).toBe(1);
      expect(result.stderr).toMatch(/No Azure credential to read disk dss-data-0/);
      expect(result.stderr).toMatch(/hint: dssnap uses the default Azure credential chain/);
      expect(await host.state()).toEqual(cleanAzureHostState);
    } finally {
      host.cloud.imds.noIdentity(false);
    }
  });
});
