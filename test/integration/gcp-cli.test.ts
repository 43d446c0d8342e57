/**
 * The gcp provider through the built CLI, as a user runs it on a Compute Engine VM: backup, snapshot-only
 * rollback point, list, doctor (every IAM permission tested), and a host without credentials (the
 * recovery paths are in gcp-recovery.test.ts). Credentials are the VM's service account token from the metadata fake (ADC): it
 * must never show in any output.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { type CliResult, dssnap } from '../support/cli.js';
import { expectExit } from '../support/cloud-harness.js';
import {
  cleanGcpHostState,
  createGcpDssHost,
  type GcpDssHost,
  gcpInstance,
  gcpProject,
  gcpZone,
} from '../support/gcp-cloud.js';

const log = silentLogger();

describe('dssnap --provider gcp (CLI)', () => {
  let host: GcpDssHost;
  let config: string;
  let args: string[];

  function expectNoToken(result: CliResult): void {
    for (const token of host.cloud.metadata.tokens) {
      expect(result.stdout).not.toContain(token);
      expect(result.stderr).not.toContain(token);
    }
  }

  beforeAll(async () => {
    host = await createGcpDssHost();
    await startDss(host.info, { log });
    config = await host.configFile();
    args = host.cliArgs(config);
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('backs up from a persistent disk snapshot and logs no token, even at debug level', async () => {
    const result = await dssnap(
      [
        'backup',
        ...args,
        ...['--to', host.destination, '--mount-root', host.mountRoot, '--disk', 'dss-data'],
        ...['--log-level', 'debug', '--log-format', 'json'],
      ],
      { env: { DSSNAP_LOG_LEVEL: 'debug' } },
    );

    expect(result.stderr).not.toMatch(/"level":(50|60)/);
    expectExit(result, 0);
    expect(result.stdout).toMatch(/mode +snapshot via gcp, quiesce fsfreeze/);
    expect(result.stdout).toMatch(/snapshot +dssnap-[a-z0-9-]+ \(gcp\) deleted/);
    expectNoToken(result);
    expect(await host.state()).toEqual(cleanGcpHostState);
  }, 180_000);

  it('takes a snapshot-only rollback point that `dssnap list --provider gcp` shows', async () => {
    const backup = await dssnap([
      'backup',
      ...args,
      '--copy',
      'none',
      '--keep-snapshot',
      '--snapshot-location',
      'eu',
      '--json',
    ]);
    const list = await dssnap([
      'list',
      '--provider',
      'gcp',
      '--config',
      config,
      '--state-dir',
      host.stateDir,
    ]);

    expectExit(backup, 0);
    const snapshotId = (JSON.parse(backup.stdout) as { manifest: { snapshots: Array<{ id: string }> } })
      .manifest.snapshots[0]!.id;
    expect(host.cloud.compute.snapshots.get(snapshotId)?.storageLocations).toEqual(['eu']);
    expectExit(list, 0);
    expect(list.stdout).toMatch(/Retained gcp snapshots: 1/);
    expect(list.stdout).toContain(`${snapshotId}  (${host.dataDir})`);
  }, 180_000);

  it('doctor checks the metadata server, the credentials, this VM and every IAM permission', async () => {
    const result = await dssnap(['doctor', ...args]);

    expectExit(result, 0);
    expect(result.stdout).toMatch(
      new RegExp(
        ` ok +gcp metadata +instance ${gcpInstance} in ${gcpZone}, project ${gcpProject} \\(metadata server http://127\\.0\\.0\\.1:\\d+\\)`,
      ),
    );
    expect(result.stdout).toMatch(
      / ok +gcp credentials +Application Default Credentials: the VM's service account \(metadata server\)/,
    );
    expect(result.stdout).toMatch(/ ok +gcp instance +dss-design-1 \(RUNNING\), 1 disk\(s\) attached/);
    for (const permission of [
      'compute.disks.createSnapshot',
      'compute.snapshots.delete',
      'compute.instances.attachDisk',
    ]) {
      expect(result.stdout).toMatch(new RegExp(` ok +iam ${permission.replace(/\./g, '\\.')} +granted`));
    }
    expectNoToken(result);
  }, 180_000);

  it('without credentials, fails before creating anything, saying where credentials come from', async () => {
    const elsewhere = join(host.cloud.work, 'no-metadata.json');
    const settings = host.cloud.providerSettings({
      project: gcpProject,
      zone: gcpZone,
      instance: gcpInstance,
    });
    delete settings.metadataEndpoint;
    await writeFile(elsewhere, JSON.stringify({ 'provider-options': settings }));

    const result = await dssnap(
      [
        'backup',
        '--config',
        elsewhere,
        '--provider',
        'gcp',
        '--data-dir',
        host.dataDir,
        '--state-dir',
        host.stateDir,
        '--copy',
        'none',
        '--keep-snapshot',
      ],
      { env: { GCE_METADATA_HOST: '127.0.0.1:9', METADATA_SERVER_DETECTION: 'none' } },
    );

    expectExit(result, 1);
    expect(result.stderr).toMatch(/GCP instances\.get failed .*Could not load the default credentials/);
    expect(result.stderr).toMatch(/hint: Check Application Default Credentials/);
    expect(await host.state()).toEqual(cleanGcpHostState);
  }, 180_000);
});
