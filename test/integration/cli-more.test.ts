/**
 * The rest of the CLI on a real btrfs host: a backup to a remote destination over a real sshd,
 * `cleanup` of what a run left without a journal, a second run's progress output on a terminal,
 * and the demo itself.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBtrfsProvider } from '../../providers/btrfs/index.js';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { TagKey } from '../../src/provider/types.js';
import { cliPath, dssnap } from '../support/cli.js';
import { createDssHost, type DssHost } from '../support/dss-host.js';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { compareTrees, formatDifferences } from '../support/tree-compare.js';

const log = silentLogger();

describe('dssnap CLI, more', () => {
  let host: DssHost;
  let sshd: TestSshd;
  let remoteRoot: string;
  let common: string[];

  beforeAll(async () => {
    host = await createDssHost({ storage: 'btrfs' });
    await startDss(host.info, { log });
    sshd = await startSshd();
    remoteRoot = await mkdtemp(join(tmpdir(), 'dssnap-remote-'));
    common = ['--data-dir', host.dataDir, '--state-dir', host.stateDir, '--snapshot-dir', host.snapshotDir!];
  });
  afterAll(async () => {
    await sshd?.stop();
    await host?.dispose();
    if (remoteRoot) await rm(remoteRoot, { recursive: true, force: true });
  });

  it('backs up to host:/path over ssh, incrementally, catalogued in the state dir', async () => {
    const to = `root@127.0.0.1:${remoteRoot}/dss`;
    const args = [
      'backup',
      ...common,
      '--to',
      to,
      '--ssh-command',
      sshd.sshCommand,
      '--keep-snapshot',
      '--json',
    ];

    const first = await dssnap(args);
    const second = await dssnap(args);

    expect([first.exitCode, second.exitCode]).toEqual([0, 0]);
    const m1 = JSON.parse(first.stdout).manifest;
    const m2 = JSON.parse(second.stdout).manifest;
    expect(m2.copy.location).toBe(`${to}/${m2.id}`);
    expect(m2.copy.basedOn).toBe(m1.id);
    // The remote copy's source (the snapshot) is hashed: the second run reuses the first one's hashes.
    expect(m2.files).toMatchObject({ source: 'snapshot', hashedFiles: expect.any(Number) });
    expect(m2.files.reusedFiles).toBeGreaterThan(m2.files.files * 0.9);
    const local = join(remoteRoot, 'dss', m2.id);
    const differences = await compareTrees(m2.snapshots[0].id, local, {
      ignore: ['tmp', 'caches', 'data-catalog'],
    });
    expect(formatDifferences(differences)).toBe('');
    const listed = await dssnap([
      'list',
      '--state-dir',
      host.stateDir,
      '--provider',
      'btrfs',
      '--snapshot-dir',
      host.snapshotDir!,
      '--json',
    ]);
    const { backups, snapshots } = JSON.parse(listed.stdout) as {
      backups: { id: string }[];
      snapshots: { id: string }[];
    };
    expect(backups.map((b) => b.id)).toEqual([m1.id, m2.id]);
    expect(snapshots.map((s) => s.id)).toEqual(
      expect.arrayContaining([m1.snapshots[0].id, m2.snapshots[0].id]),
    );
  });

  it('takes a snapshot-only rollback point with --copy none --keep-snapshot, catalogued in the state dir', async () => {
    const result = await dssnap(['backup', ...common, '--copy', 'none', '--keep-snapshot', '--json']);

    expect(result.exitCode).toBe(0);
    const { manifest } = JSON.parse(result.stdout);
    expect(manifest.copy).toBeUndefined();
    expect(manifest.snapshots).toEqual([expect.objectContaining({ provider: 'btrfs', retained: true })]);
    const listed = await dssnap([
      'list',
      '--state-dir',
      host.stateDir,
      '--provider',
      'btrfs',
      '--snapshot-dir',
      host.snapshotDir!,
    ]);
    expect(listed.stdout).toMatch(new RegExp(`${manifest.id}.*snapshot/btrfs\\s+snapshot`));
    expect(listed.stdout).toContain(manifest.snapshots[0].id);
  });

  it('refuses --copy none without --keep-snapshot: nothing would be kept', async () => {
    const result = await dssnap(['backup', ...common, '--copy', 'none']);

    expect(result.exitCode).toBe(3);
    expect(result.stderr).toMatch(/--copy none needs snapshot mode and --keep-snapshot/);
  });

  it('cleanup deletes what a run left without a journal, never a retained snapshot', async () => {
    const provider = createBtrfsProvider({
      stateDir: host.stateDir,
      settings: { snapshotDir: host.snapshotDir! },
    });
    const volumes = await provider.locate(host.dataDir);
    const [leftover] = await provider.createSnapshots(volumes, {
      [TagKey.runId]: '20250101T000000Z-dead00',
      [TagKey.dataDir]: host.dataDir,
      [TagKey.role]: 'snapshot',
    });
    const retainedBefore = await provider.list({ retained: true });
    const cleanupArgs = [
      'cleanup',
      '--provider',
      'btrfs',
      '--snapshot-dir',
      host.snapshotDir!,
      '--state-dir',
      host.stateDir,
    ];

    const dry = await dssnap([...cleanupArgs, '--dry-run']);
    const real = await dssnap(cleanupArgs);

    expect(dry.stdout).toContain(`would delete: snapshot ${leftover!.id} (run 20250101T000000Z-dead00)`);
    expect(real.exitCode).toBe(0);
    expect(real.stdout).toContain(`deleted: snapshot ${leftover!.id}`);
    expect((await provider.list({})).map((s) => s.id)).not.toContain(leftover!.id);
    expect(await provider.list({ retained: true })).toEqual(retainedBefore);
  });

  it('shows a progress bar on a terminal', async () => {
    const destination = await mkdtemp(join(tmpdir(), 'dssnap-tty-'));
    try {
      // `script` gives the CLI a pseudo-terminal, as an administrator running it by hand has.
      const command = [process.execPath, cliPath, 'backup', ...common, '--to', destination]
        .map((w) => `'${w}'`)
        .join(' ');
      const result = await execa('script', ['-qec', command, '/dev/null'], {
        reject: false,
        env: { DSSNAP_LOG_LEVEL: 'warn' },
      });

      expect(result.exitCode).toBe(0);
      expect(result.stdout).toMatch(/copy \[[█░]+\] \d+%/);
      expect(result.stdout).toMatch(/Backup \S+ completed/);
    } finally {
      await rm(destination, { recursive: true, force: true });
    }
  });

  it('runs the demo end to end and cleans up after itself', async () => {
    const result = await dssnap(['demo', '--preset', 'tiny']);

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/mode\s+snapshot via btrfs, quiesce none/);
    expect(result.stdout).toMatch(/linked to \S+\)/);
    expect(result.stdout).toMatch(/generation 2, a full browsable tree too, adds only/);
    // Its own volume is gone (other test files may hold loop devices of their own meanwhile).
    const volumeDir = /at (\/\S+)\/mnt\/dss_data/.exec(result.stdout)?.[1];
    expect(volumeDir).toBeDefined();
    expect((await execa('losetup', ['-n', '-O', 'BACK-FILE', '-l'])).stdout).not.toContain(volumeDir!);
    expect(existsSync(volumeDir!)).toBe(false);
  });
});
