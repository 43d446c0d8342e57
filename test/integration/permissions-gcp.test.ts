/**
 * Issue 8, GCP: the IAM permissions the provider's calls really needed — as the Compute fake checks
 * them, call by call, the way IAM does — during a backup, a snapshot-only rollback point (its snapshot
 * retained), cleanup, list and doctor through the CLI, must be exactly the declared
 * list (providers/gcp/permissions.ts) and exactly the custom role of terraform-examples/gcp. And
 * `dssnap doctor --provider gcp --permissions` shows the list with testIamPermissions' verdicts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gcpPermissions } from '../../providers/gcp/permissions.js';
import { runBackup } from '../../src/backup/backup.js';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { dssnap } from '../support/cli.js';
import { cleanGcpHostState, createGcpDssHost, type GcpDssHost } from '../support/gcp-cloud.js';
import { disagreements, gcpGranted, missingTableRows } from '../support/permission-recorder.js';

const log = silentLogger();

describe('gcp: called, declared and granted IAM permissions', () => {
  let host: GcpDssHost;
  let args: string[];

  beforeAll(async () => {
    host = await createGcpDssHost();
    await startDss(host.info, { log });
    args = ['--config', await host.configFile(), '--provider', 'gcp', '--state-dir', host.stateDir];
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('agree: a backup, a rollback point (a retained snapshot), cleanup, list and doctor need exactly what is declared and granted', async () => {
    await runBackup(host.options(), { log });
    await runBackup(host.options({ copy: 'none', keepSnapshot: true }), { log });
    for (const command of [['cleanup'], ['list'], ['doctor', '--data-dir', host.dataDir]]) {
      const result = await dssnap([...command, ...args]);
      expect(result.exitCode, `${command[0]}: ${result.stdout}${result.stderr}`).toBe(0);
    }
    expect(await host.state()).toEqual(cleanGcpHostState);

    const lists = {
      called: host.cloud.compute.checkedPermissions,
      declared: gcpPermissions('READ_WRITE').map((p) => p.action),
      granted: await gcpGranted('READ_WRITE'),
    };

    expect(disagreements(lists)).toEqual([]);
  }, 180_000); // several runs in one test: room for a loaded CI machine

  it('agree for a READ_ONLY attachment: useReadOnly instead of use', async () => {
    const declared = gcpPermissions('READ_ONLY').map((p) => p.action);

    expect(disagreements({ called: declared, declared, granted: await gcpGranted('READ_ONLY') })).toEqual([]);
    expect(declared).toContain('compute.disks.useReadOnly');
    expect(declared).not.toContain('compute.disks.use');
  });

  it('doctor --permissions: every declared permission with why, granted', async () => {
    const result = await dssnap(['doctor', '--permissions', ...args]);

    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^ACTION +STATUS +WHY$/m);
    expect(missingTableRows(result.stdout, gcpPermissions('READ_WRITE'), /^allowed$/)).toEqual([]);
  });

  it('doctor --permissions marks a permission the service account lacks and exits 5', async () => {
    host.cloud.compute.denied.add('compute.snapshots.delete');
    try {
      const result = await dssnap(['doctor', '--permissions', ...args]);

      expect(result.exitCode).toBe(5);
      expect(result.stdout).toMatch(/^compute\.snapshots\.delete +DENIED +delete the run snapshot/m);
      expect(result.stdout).toMatch(/^compute\.snapshots\.delete: MISSING — needed to delete/m);
      expect(result.stdout.match(/ DENIED /g)).toHaveLength(1);
    } finally {
      host.cloud.compute.denied.clear();
    }
  });
});
