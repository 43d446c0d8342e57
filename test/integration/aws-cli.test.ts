/**
 * The aws provider through the built CLI, as a user runs it on an EC2 instance: backup, snapshot-only
 * rollback point, list, doctor (DryRun table), a run killed with SIGKILL mid-copy cleaned up by
 * `dssnap cleanup --provider aws` and `dssnap recover`, a permission missing for good, and no
 * credentials. Credentials are static fakes in the environment: they must never show in any output.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { type AwsDssHost, awsTestEnv, cleanHostState, createAwsDssHost } from '../support/aws-cloud.js';
import { type CliResult, dssnap } from '../support/cli.js';
import { killBackupMidCopy } from '../support/cloud-harness.js';

const log = silentLogger();
const secret = awsTestEnv.AWS_SECRET_ACCESS_KEY!;

function expectNoSecret(result: CliResult): void {
  expect(result.stdout).not.toContain(secret);
  expect(result.stderr).not.toContain(secret);
}

describe('dssnap --provider aws (CLI)', () => {
  let host: AwsDssHost;
  let config: string;
  let args: string[];

  beforeAll(async () => {
    // Big enough for the copy to take a moment, so a SIGKILL lands in the middle of it.
    host = await createAwsDssHost({ generate: { files: 2_000, bytes: 200 * 1024 ** 2 } });
    await startDss(host.info, { log });
    config = await host.configFile();
    args = host.cliArgs(config);
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('backs up from an EBS snapshot and logs no credential, even at debug level', async () => {
    const result = await dssnap(
      [
        'backup',
        ...args,
        ...['--to', host.destination, '--mount-root', host.mountRoot, '--exclude-class', 'data'],
        ...['--log-level', 'debug', '--log-format', 'json'],
      ],
      { env: { DSSNAP_LOG_LEVEL: 'debug' } },
    );

    expect(result.stderr).not.toMatch(/"level":(50|60)/);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/mode +snapshot via aws, quiesce fsfreeze/);
    expect(result.stdout).toMatch(/snapshot +snap-[0-9a-f]+ \(aws\) deleted/);
    expectNoSecret(result);
    expect(await host.state()).toEqual(cleanHostState);
  });

  it('takes a snapshot-only rollback point that `dssnap list --provider aws` shows', async () => {
    const backup = await dssnap(['backup', ...args, '--copy', 'none', '--keep-snapshot', '--json']);
    const list = await dssnap([
      'list',
      '--provider',
      'aws',
      '--config',
      config,
      '--state-dir',
      host.stateDir,
    ]);

    expect(backup.exitCode).toBe(0);
    const snapshotId = (JSON.parse(backup.stdout) as { manifest: { snapshots: Array<{ id: string }> } })
      .manifest.snapshots[0]!.id;
    expect(list.exitCode).toBe(0);
    expect(list.stdout).toMatch(/Retained aws snapshots: 1/);
    expect(list.stdout).toContain(`${snapshotId}  (${host.dataDir})`);
  });

  it('doctor checks IMDSv2, the credentials and every EC2 action with DryRun', async () => {
    const result = await dssnap(['doctor', ...args]);

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(
      / ok +aws imds +IMDSv2 at http:\/\/127\.0\.0\.1:\d+: instance i-[0-9a-f]+ in us-east-1a/,
    );
    expect(result.stdout).toMatch(/ ok +aws credentials +accepted by EC2/);
    for (const action of [
      'CreateSnapshot',
      'CreateVolume',
      'AttachVolume',
      'DetachVolume',
      'DeleteVolume',
      'DeleteSnapshot',
    ]) {
      expect(result.stdout).toMatch(new RegExp(` ok +iam ec2:${action} +allowed \\(DryRun\\)`));
    }
    expectNoSecret(result);
  });

  it('doctor shows a denied action and exits 5', async () => {
    host.cloud.fail('DeleteVolume', 'denied');
    try {
      const result = await dssnap(['doctor', ...args]);

      expect(result.exitCode).toBe(5);
      expect(result.stdout).toMatch(/FAIL +iam ec2:DeleteVolume +DENIED \(UnauthorizedOperation\)/);
      expect(result.stdout).toMatch(/ ok +iam ec2:CreateVolume +allowed/);
    } finally {
      host.cloud.proxy.clearFaults();
    }
  });

  it('after a SIGKILL mid-copy, cleanup --provider aws removes the volume and snapshot, recover the rest', async () => {
    await killBackupMidCopy(
      [...args, '--to', host.destination, '--mount-root', host.mountRoot],
      host.destination,
    );
    const killed = await host.state();
    expect(killed.cloud.volumes).toHaveLength(1);
    expect(killed.cloud.snapshots).toHaveLength(1);
    expect(killed.mounts).toHaveLength(1);

    const dryRun = await dssnap([
      'cleanup',
      '--provider',
      'aws',
      '--config',
      config,
      '--state-dir',
      host.stateDir,
      '--dry-run',
    ]);
    const cleanup = await dssnap([
      'cleanup',
      '--provider',
      'aws',
      '--config',
      config,
      '--state-dir',
      host.stateDir,
    ]);

    expect(dryRun.exitCode).toBe(0);
    expect(dryRun.stdout).toContain(`would delete: exposure ${killed.cloud.volumes[0]}`);
    expect(dryRun.stdout).toContain(`would delete: snapshot ${killed.cloud.snapshots[0]}`);
    expect(cleanup.exitCode).toBe(0);
    expect(cleanup.stdout).toContain(`deleted: exposure ${killed.cloud.volumes[0]}`);
    const cleaned = await host.state();
    expect({ cloud: cleaned.cloud, mounts: cleaned.mounts }).toEqual({
      cloud: cleanHostState.cloud,
      mounts: [],
    });
    const recovered = await dssnap(['recover', '--state-dir', host.stateDir]);
    expect(recovered.exitCode).toBe(0);
    expect(await host.state()).toEqual(cleanHostState);
  });

  it('a permission missing for good fails the run (exit 1) naming it; recover cleans up once it is granted', async () => {
    host.cloud.fail('DetachVolume', 'denied');

    const result = await dssnap([
      'backup',
      ...args,
      ...['--to', host.destination, '--mount-root', host.mountRoot, '--exclude-class', 'data'],
    ]);

    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('AWS denied ec2:DetachVolume (UnauthorizedOperation)');
    expect(result.stderr).toMatch(/hint: Allow ec2:DetachVolume in the policy of the instance role/);
    const stuck = await host.state();
    expect({
      volumes: stuck.cloud.volumes.length,
      journals: stuck.journals,
      dss: stuck.dss,
      writable: stuck.writable,
    }).toEqual({
      volumes: 1,
      journals: 1,
      dss: 'running',
      writable: true,
    });
    host.cloud.proxy.clearFaults();
    const recovered = await dssnap(['recover', '--state-dir', host.stateDir]);
    expect(recovered.exitCode).toBe(0);
    expect(await host.state()).toEqual(cleanHostState);
  });

  it('without credentials, fails before creating anything, saying where credentials come from', async () => {
    const result = await dssnap(['backup', ...args, '--copy', 'none', '--keep-snapshot'], {
      env: { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' },
    });

    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/AWS rejected the credentials for ec2:DescribeVolumes/);
    expect(result.stderr).toMatch(/hint: dssnap uses the AWS SDK default credential chain/);
    expect(await host.state()).toEqual(cleanHostState);
  });
});
