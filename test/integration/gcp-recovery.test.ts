/**
 * What a failed or killed gcp run leaves, and how it goes away: a run killed with SIGKILL mid-copy
 * (temporary disk attached and mounted, snapshot kept) is cleaned by `dssnap cleanup --provider gcp`
 * (found by label) and `dssnap recover` (the journal); a permission missing for good fails the run
 * naming it, and recovery finishes the undo once it is granted; doctor names the missing permission.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGcpProvider } from '../../providers/gcp/index.js';
import { runBackup } from '../../src/backup/backup.js';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { dssnap } from '../support/cli.js';
import { expectExit, expectRecoveredClean, killBackupMidCopy } from '../support/cloud-harness.js';
import { cleanGcpHostState, createGcpDssHost, type GcpDssHost } from '../support/gcp-cloud.js';

const log = silentLogger();

describe('gcp provider: recovery', () => {
  let host: GcpDssHost;
  let config: string;

  beforeAll(async () => {
    // Big enough for the copy to take a moment, so a SIGKILL lands in the middle of it.
    host = await createGcpDssHost({ generate: { files: 2_000, bytes: 120 * 1024 ** 2 } });
    await startDss(host.info, { log });
    config = await host.configFile();
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('after a SIGKILL mid-copy, cleanup --provider gcp removes the disk and snapshot, recover the rest', async () => {
    await killBackupMidCopy(
      [...host.cliArgs(config), '--to', host.destination, '--mount-root', host.mountRoot],
      host.destination,
    );
    const killed = await host.state();
    expect(killed.cloud.disks).toHaveLength(1);
    expect(killed.cloud.snapshots).toHaveLength(1);
    expect(killed.cloud.devices).toHaveLength(1);
    expect(killed.mounts).toHaveLength(1);
    const cleanupArgs = ['cleanup', '--provider', 'gcp', '--config', config, '--state-dir', host.stateDir];

    const dryRun = await dssnap([...cleanupArgs, '--dry-run']);
    const cleanup = await dssnap(cleanupArgs);

    expectExit(dryRun, 0);
    expect(dryRun.stdout).toContain(`would delete: exposure ${killed.cloud.disks[0]}`);
    expect(dryRun.stdout).toContain(`would delete: snapshot ${killed.cloud.snapshots[0]}`);
    expectExit(cleanup, 0);
    expect(cleanup.stdout).toContain(`deleted: exposure ${killed.cloud.disks[0]}`);
    expect(cleanup.stdout).toContain(`deleted: snapshot ${killed.cloud.snapshots[0]}`);
    const cleaned = await host.state();
    expect({ cloud: cleaned.cloud, mounts: cleaned.mounts }).toEqual({
      cloud: cleanGcpHostState.cloud,
      mounts: [],
    });
    const recovered = await dssnap(['recover', '--state-dir', host.stateDir]);
    expectExit(recovered, 0);
    expect(await host.state()).toEqual(cleanGcpHostState);
  }, 240_000);

  it('a permission missing for good fails the run naming it; recovery finishes the undo once it is granted', async () => {
    host.cloud.compute.denied.add('compute.instances.detachDisk');
    try {
      const attempt = runBackup(host.options({ excludeClass: ['data'] }), { log });

      await expect(attempt).rejects.toMatchObject({
        message: expect.stringContaining(
          'GCP denied instances.detachDisk: the credentials lack the IAM permission compute.instances.detachDisk',
        ),
        hint: expect.stringContaining("Grant compute.instances.detachDisk to the VM's service account"),
      });
      const stuck = await host.state();
      expect({
        disks: stuck.cloud.disks.length,
        journals: stuck.journals,
        dss: stuck.dss,
        writable: stuck.writable,
      }).toEqual({
        disks: 1,
        journals: 1,
        dss: 'running',
        writable: true,
      });
    } finally {
      host.cloud.compute.denied.clear();
    }
    await expectRecoveredClean(host, cleanGcpHostState, log);
  }, 240_000);

  it('doctor names each missing permission and what it is needed for', async () => {
    host.cloud.compute.denied.add('compute.disks.delete');
    try {
      const provider = createGcpProvider({
        stateDir: host.stateDir,
        settings: host.cloud.providerSettings(),
      });

      const checks = await provider.doctor!({ dataDir: host.dataDir });

      expect(
        checks.filter((c) => !c.ok),
        JSON.stringify(checks),
      ).toEqual([
        {
          name: 'iam compute.disks.delete',
          ok: false,
          detail: 'MISSING — needed to delete the temporary disk',
        },
      ]);
      expect(checks.map((c) => c.name)).toEqual([
        'gcp metadata',
        'gcp credentials',
        'gcp instance',
        ...provider.permissions.map((p) => `iam ${p.action}`),
      ]);
    } finally {
      host.cloud.compute.denied.clear();
    }
  }, 240_000);
});
