/**
 * The CLI as users and scripts see it: exit codes, messages with hints, `--json`, config files —
 * and bad input that changes nothing.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDss } from '../../src/dss/control.js';
import { run } from '../../src/host/exec.js';
import { silentLogger } from '../../src/log.js';
import { acquireLock } from '../../src/procedure/lock.js';
import { dssnap } from '../support/cli.js';
import { createDssHost, type DssHost } from '../support/dss-host.js';

const log = silentLogger();

describe('dssnap CLI', () => {
  let host: DssHost;
  let scratch: string;
  let common: string[];

  beforeAll(async () => {
    host = await createDssHost({ storage: 'btrfs' });
    await startDss(host.info, { log });
    scratch = await mkdtemp(join(tmpdir(), 'dssnap-cli-'));
    common = [
      '--data-dir',
      host.dataDir,
      '--state-dir',
      host.stateDir,
      '--mount-root',
      host.mountRoot,
      '--snapshot-dir',
      host.snapshotDir!,
    ];
  });
  afterAll(async () => {
    await host?.dispose();
    await rm(scratch, { recursive: true, force: true });
  });

  async function expectUnchanged(action: () => Promise<void>): Promise<void> {
    const before = [await host.destinationEntries(), await host.snapshotEntries()];
    await action();
    expect([await host.destinationEntries(), await host.snapshotEntries()]).toEqual(before);
    expect(await host.dssState()).toBe('running');
  }

  it('prints help with every command and the exit codes', async () => {
    const result = await dssnap(['--help']);

    expect(result.exitCode).toBe(0);
    for (const command of ['backup', 'plan', 'list', 'recover', 'cleanup', 'doctor', 'demo']) {
      expect(result.stdout).toContain(`dssnap ${command}`);
    }
    expect(result.stdout).toMatch(/2 done with warnings/);
  });

  it('backs up with --json: the result object on stdout, exit 0, then lists it', async () => {
    const result = await dssnap(['backup', ...common, '--to', host.destination, '--json']);

    expect(result.exitCode).toBe(0);
    const output = JSON.parse(result.stdout) as { ok: boolean; manifest: { id: string; pauseMs: number } };
    expect(output.ok).toBe(true);
    const listed = await dssnap(['list', '--to', host.destination, '--json']);
    expect((JSON.parse(listed.stdout) as { backups: { id: string }[] }).backups.map((b) => b.id)).toContain(
      output.manifest.id,
    );
    const table = await dssnap(['list', '--to', host.destination]);
    expect(table.stdout).toMatch(new RegExp(`${output.manifest.id}\\s+\\S+ \\S+\\s+snapshot/btrfs\\s+rsync`));
  });

  it.each([
    ['an unknown option', ['backup', '--data-dri', '/x'], /Unknown argument|data-dri/],
    [
      'a missing DATA_DIR',
      ['backup', '--data-dir', '/nonexistent/dss', '--to', '/tmp/x'],
      /nonexistent\/dss/,
    ],
    ['an unknown provider', ['backup', '--provider', 'ceph'], /must be one of: .*btrfs/],
    [
      'an unknown exclusion class',
      ['backup', '--exclude-class', 'videos'],
      /must be one of: temp, logs, other, data/,
    ],
    [
      'a bad duration',
      ['backup', '--max-pause', 'soon'],
      /Invalid value for --max-pause: "soon" \(a string\): not a duration/,
    ],
  ])('exits 3 on %s with a specific message, changing nothing', async (_name, args, message) => {
    await expectUnchanged(async () => {
      const result = await dssnap([
        ...args,
        ...(args.includes('--data-dir') ? [] : common),
        ...(args.includes('--to') ? [] : ['--to', host.destination]),
      ]);

      expect(result.exitCode).toBe(3);
      expect(result.stderr).toMatch(message);
    });
  });

  it('exits 3 when the destination is inside DATA_DIR', async () => {
    await expectUnchanged(async () => {
      const result = await dssnap(['backup', ...common, '--to', join(host.dataDir, 'backups')]);

      expect(result.exitCode).toBe(3);
      expect(result.stderr).toMatch(/is inside DATA_DIR/);
    });
  });

  it('exits 3 when the destination is not writable, saying so', async () => {
    const readOnly = join(scratch, 'read-only');
    await mkdir(readOnly);
    await run('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', readOnly]);
    try {
      await expectUnchanged(async () => {
        const result = await dssnap(['backup', ...common, '--to', join(readOnly, 'dss')]);

        expect(result.exitCode).toBe(3);
        expect(result.stderr).toMatch(/is not writable/);
        expect(result.stderr).toMatch(/hint: .*write access/);
      });
    } finally {
      await run('umount', [readOnly]);
    }
  });

  it('exits 3 on a path that is not a DSS data dir, saying what is missing', async () => {
    await expectUnchanged(async () => {
      const result = await dssnap([
        'backup',
        ...common.slice(2),
        '--data-dir',
        scratch,
        '--to',
        host.destination,
      ]);

      expect(result.exitCode).toBe(3);
      expect(result.stderr).toMatch(/dss-version\.json/);
      expect(result.stderr).toMatch(/hint: /);
    });
  });

  it('rejects an unknown key in the config file, listing the valid ones', async () => {
    const config = join(scratch, 'dssnap.yaml');
    await writeFile(config, `data-dir: ${host.dataDir}\nto: ${host.destination}\nretention-days: 4\n`);

    await expectUnchanged(async () => {
      const result = await dssnap(['backup', '--config', config]);

      expect(result.exitCode).toBe(3);
      expect(result.stderr).toMatch(/Unknown option 'retention-days' in config file/);
      expect(result.stderr).toMatch(/Valid options: .*data-dir.*keep-snapshot/);
    });
  });

  it('takes options from a config file and DSSNAP_* variables, flags winning', async () => {
    const config = join(scratch, 'dssnap-ok.yaml');
    await writeFile(config, `data-dir: ${host.dataDir}\nformat: tar\nsnapshot-dir: ${host.snapshotDir}\n`);

    const result = await dssnap(['plan', '--config', config, '--format', 'rsync', '--json'], {
      env: { DSSNAP_TO: host.destination, DSSNAP_STATE_DIR: host.stateDir },
    });

    expect(result.exitCode).toBe(0);
    const plan = JSON.parse(result.stdout) as { steps: { title: string }[] };
    expect(plan.steps.map((s) => s.title).join('\n')).toMatch(
      new RegExp(`to ${host.destination} \\(rsync generation`),
    );
  });

  it('exits 4 when another run holds the lock', async () => {
    const held = acquireLock(host.stateDir, host.dataDir, 'held-by-test');
    try {
      await expectUnchanged(async () => {
        const result = await dssnap(['backup', ...common, '--to', host.destination]);

        expect(result.exitCode).toBe(4);
        expect(result.stderr).toMatch(/locked by run held-by-test \(pid \d+\) since/);
      });
    } finally {
      held.lock.release();
    }
  });

  it('exits 5 when rsync is not installed, naming the package', async () => {
    await expectUnchanged(async () => {
      // Hide rsync in a private mount namespace: the binary becomes /dev/null, not executable.
      const { execa } = await import('execa');
      const { cliPath } = await import('../support/cli.js');
      const result = await execa(
        'unshare',
        [
          '-m',
          'sh',
          '-c',
          `mount --bind /dev/null /usr/bin/rsync && exec "${process.execPath}" "${cliPath}" "$@"`,
          'sh',
          'backup',
          ...common,
          '--to',
          host.destination,
        ],
        { reject: false },
      );

      expect(result.exitCode).toBe(5);
      expect(result.stderr).toMatch(/'rsync' is not installed/);
      expect(result.stderr).toMatch(/apt-get|package: rsync/);
    });
  });

  it('plan prints the steps and what each exclusion class leaves out, and changes nothing', async () => {
    await expectUnchanged(async () => {
      const result = await dssnap(['plan', ...common, '--to', host.destination, '--exclude-class', 'logs']);

      expect(result.exitCode).toBe(0);
      expect(result.stdout).toMatch(/Snapshot .* \(btrfs\)/);
      expect(result.stdout).toMatch(/temp\s+tmp\s+/);
      expect(result.stdout).toMatch(/logs\s+jobs\s+/);
    });
  });

  it('doctor checks the tools and the DATA_DIR', async () => {
    const result = await dssnap(['doctor', '--data-dir', host.dataDir, '--state-dir', host.stateDir]);

    expect(result.stdout).toMatch(/ok\s+data dir/);
    expect(result.stdout).toMatch(/ok\s+provider\s+btrfs detected/);
    expect(result.stdout).toMatch(/ok\s+tool rsync\s+\/usr\/bin\/rsync/);
    expect(result.exitCode).toBe(0);
  });
});
