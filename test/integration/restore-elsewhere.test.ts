/**
 * Restores to another location or onto another DSS version: the version check against the target
 * installation, `INSTALL_DIR/installer.sh -d DATA_DIR -u` run as the DATA_DIR owner (a fake installer
 * that records its arguments and migrates the data dir), the follow-up; a failing installer, and a
 * restore killed with SIGKILL during the installer, put the original DATA_DIR back exactly as it was.
 */
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { resolveOptions } from '../../src/config.js';
import { dssStatus, startDss, stopDss } from '../../src/dss/control.js';
import { inspectDataDir } from '../../src/dss/layout.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { leftoverJournals } from '../../src/procedure/journal.js';
import { copyTree } from '../../src/restore/materialize.js';
import { restoreOptionsSchema } from '../../src/restore/options.js';
import { runRestore } from '../../src/restore/restore.js';
import { createFixtureRoot, generateDataDir } from '../fixtures/generate-data-dir.js';
import { createInstallDir, type FakeInstallDir } from '../fixtures/install-dir.js';
import { dssnap, spawnDssnap } from '../support/cli.js';
import { createDssHost, type DssHost, nobody } from '../support/dss-host.js';
import { compareTrees, formatDifferences } from '../support/tree-compare.js';

const log = silentLogger();
const runtimeFiles = ['run/backend.log', 'run/supervisord.pid'];

describe('restore elsewhere', () => {
  let host: DssHost;
  let work: string;
  let backupId: string;
  let newer: FakeInstallDir;
  let same: FakeInstallDir;
  let older: FakeInstallDir;

  beforeAll(async () => {
    host = await createDssHost({ storage: 'plain' });
    work = await createFixtureRoot('dssnap-elsewhere-');
    backupId = (await runBackup(host.options({ mode: 'cold', force: true }), { log })).backupId;
    newer = await createInstallDir({ path: join(work, 'dataiku-dss-13.5.0'), productVersion: '13.5.0' });
    same = await createInstallDir({ path: join(work, 'dataiku-dss-13.4.2'), productVersion: '13.4.2' });
    older = await createInstallDir({ path: join(work, 'dataiku-dss-13.3.0'), productVersion: '13.3.0' });
  });
  afterAll(async () => {
    for (const dir of (await readdir(work).catch(() => [])).filter((n) => !n.startsWith('dataiku-'))) {
      const info = await inspectDataDir(join(work, dir)).catch(() => undefined);
      if (info) await stopDss(info).catch(() => undefined);
    }
    await host?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  const options = (overrides: Record<string, unknown>) =>
    resolveOptions(restoreOptionsSchema, {
      flags: {
        backupId,
        to: host.destination,
        stateDir: host.stateDir,
        mountRoot: host.mountRoot,
        ...overrides,
      },
    });

  it('restores into a new path onto a newer DSS: installer.sh -d DATA_DIR -u as the owner, then DSS starts', async () => {
    const target = join(work, 'new_dss');
    const logFile = join(work, 'restore.log');
    const fileLog = createLogger({ format: 'json', destination: logFile, level: 'info' });

    const result = await runRestore(options({ dataDir: target, installDir: newer.path }), { log: fileLog });

    expect(result.exitCode).toBe(0);
    expect(result.strategy).toBe('new');
    expect(result.movedAside).toBeUndefined();
    expect(await newer.calls()).toEqual([
      { args: ['-d', target, '-u', '-y'], user: 'nobody', uid: nobody.uid, pid: expect.any(Number) },
    ]);
    const info = await inspectDataDir(target);
    expect(info.version.productVersion).toBe('13.5.0');
    expect(await readFile(join(target, 'install-support/expected-dip-home.txt'), 'utf8')).toBe(target);
    expect(result.dssStarted).toBe(true);
    expect(await dssStatus(info)).toBe('running');
    await stopDss(info, { log });
    const differences = await compareTrees(join(host.destination, backupId), target, {
      ignore: [...runtimeFiles, 'dss-version.json', 'install-support/expected-dip-home.txt'],
    });
    expect(
      formatDifferences(differences.filter((d) => !['.', 'run', 'install-support'].includes(d.path))),
    ).toBe('');
    // The installer's output went to the log, line by line; the follow-up names the code envs.
    const logged = await readFile(logFile, 'utf8');
    expect(logged).toContain('Migrating the data directory to DSS 13.5.0');
    expect(result.followUp.join('\n')).toMatch(/Rebuild the \d+ code environment\(s\)/);
    expect(result.followUp.join('\n')).toContain(
      `${newer.path}/scripts/install/install-boot.sh ${target} nobody`,
    );
  });

  it('gives the restored tree to --owner and runs the installer as that user', async () => {
    const target = join(work, 'owned_dss');

    const result = await runRestore(
      options({ dataDir: target, installDir: same.path, owner: 'daemon', start: false }),
      {
        log,
      },
    );

    expect(result.dssStarted).toBe(false);
    const daemon = (await stat(join(target, 'config/general-settings.json'))).uid;
    expect(daemon).toBe(1);
    expect((await stat(target)).uid).toBe(1);
    expect((await same.calls()).at(-1)).toMatchObject({ user: 'daemon', uid: 1 });
  });

  it('refuses a backup from a newer DSS than the installation, creating nothing', async () => {
    const target = join(work, 'refused_dss');
    const before = await readdir(work);

    const restore = runRestore(options({ dataDir: target, installDir: older.path }), { log });

    await expect(restore).rejects.toMatchObject({ code: 'VERSION_MISMATCH', exitCode: 5 });
    await expect(restore).rejects.toThrow(/from DSS 13\.4\.2.*newer than the installation .*DSS 13\.3\.0/);
    expect(await readdir(work)).toEqual(before);
    expect(await older.calls()).toEqual([]);
  });

  it('refuses an --install-dir that is not a DSS installation', async () => {
    const restore = runRestore(options({ dataDir: join(work, 'x'), installDir: work }), { log });

    await expect(restore).rejects.toThrow(/is not a DSS installation directory/);
  });

  describe('onto an existing DATA_DIR', () => {
    let target: string;
    let reference: string;

    beforeAll(async () => {
      target = join(work, 'other_dss');
      reference = join(work, 'other_reference');
      await generateDataDir({ dir: target, preset: 'tiny', seed: 42, owner: nobody });
      await copyTree(target, reference);
    });

    async function expectOriginalBack(): Promise<void> {
      const info = await inspectDataDir(target);
      expect(await dssStatus(info)).toBe('running');
      await stopDss(info, { log });
      const differences = await compareTrees(reference, target, { ignore: runtimeFiles });
      expect(formatDifferences(differences.filter((d) => !(d.path === 'run' && d.kind === 'mtime')))).toBe(
        '',
      );
      const leftovers = (await readdir(work)).filter(
        (n) => n.includes('before-restore') || n.startsWith('.dssnap-restore'),
      );
      expect(leftovers).toEqual([]);
      expect(leftoverJournals(host.stateDir)).toEqual([]);
    }

    it('puts the original back, running, when the installer fails half-way', async () => {
      await startDss(await inspectDataDir(target), { log });
      await newer.failWith(1);
      try {
        const restore = runRestore(options({ dataDir: target, installDir: newer.path, force: true }), {
          log,
        });

        await expect(restore).rejects.toMatchObject({ code: 'COMMAND_FAILED', exitCode: 1 });
        await expect(restore).rejects.toThrow(/Migration step 3\/7 failed/);
      } finally {
        await newer.failWith(0);
      }
      await expectOriginalBack();
    });

    it('puts the original back with dssnap recover after a SIGKILL during the installer', async () => {
      await startDss(await inspectDataDir(target), { log });
      await newer.sleepFor(60);
      const calls = (await newer.calls()).length;
      const child = spawnDssnap([
        'restore',
        backupId,
        '--to',
        host.destination,
        '--data-dir',
        target,
        '--install-dir',
        newer.path,
        '--force',
        '--state-dir',
        host.stateDir,
      ]);
      try {
        const deadline = Date.now() + 60_000;
        while ((await newer.calls()).length === calls && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const installer = (await newer.calls()).at(-1)!;
        // A crash takes the whole process tree: dssnap and the installer it runs.
        child.kill('SIGKILL');
        process.kill(installer.pid, 'SIGKILL');
        await child;
        expect(await readdir(work)).toContainEqual(expect.stringMatching(/^other_dss\.before-restore-/));

        const recovered = await dssnap(['recover', '--state-dir', host.stateDir]);

        expect(recovered.exitCode).toBe(0);
        expect(recovered.stdout).toMatch(/undid swap-data-dir, stop-dss, stage-copy/);
      } finally {
        await newer.sleepFor(0);
      }
      await expectOriginalBack();
    });
  });
});
