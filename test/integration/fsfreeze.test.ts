/**
 * `--quiesce fsfreeze` on a real XFS volume (DATA_DIR its mount root), with the fake provider standing
 * in for a cloud snapshot call: the filesystem is frozen only for the call, thawed in every case —
 * including a call that hangs past --max-pause — and never frozen where it would block dssnap itself.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFakeState } from '../../providers/fake/index.js';
import { runBackup } from '../../src/backup/backup.js';
import { backupOptionsSchema, resolveOptions } from '../../src/config.js';
import { startDss, stopDss } from '../../src/dss/control.js';
import { inspectDataDir } from '../../src/dss/layout.js';
import { run } from '../../src/host/exec.js';
import { silentLogger } from '../../src/log.js';
import { leftoverJournals } from '../../src/procedure/journal.js';
import { generateDataDir } from '../fixtures/generate-data-dir.js';
import { createDssHost, type DssHost, nobody } from '../support/dss-host.js';
import { createLoopVolume, type LoopVolume } from '../support/loop-volume.js';

const log = silentLogger();

/** A write that completes within `ms` proves the filesystem is not frozen. */
async function expectWritable(dir: string, ms = 2_000): Promise<void> {
  await run('timeout', [
    String(ms / 1000),
    'sh',
    '-c',
    `echo thawed > '${dir}/.thaw-probe' && sync -f '${dir}/.thaw-probe'`,
  ]);
  await rm(join(dir, '.thaw-probe'), { force: true });
}

describe('fsfreeze quiesce on XFS', () => {
  let volume: LoopVolume;
  let work: string;
  let options: (
    overrides?: Record<string, unknown>,
  ) => ReturnType<typeof resolveOptions<typeof backupOptionsSchema>>;
  let dataDir: string;

  beforeAll(async () => {
    volume = await createLoopVolume({ fsType: 'xfs' });
    const { chmod } = await import('node:fs/promises');
    await chmod(join(volume.mountPoint, '..'), 0o755);
    const generated = await generateDataDir({ dir: volume.mountPoint, preset: 'tiny', owner: nobody });
    dataDir = generated.dataDir;
    await startDss(await inspectDataDir(dataDir), { log });
    work = await mkdtemp(join(tmpdir(), 'dssnap-freeze-'));
    await mkdir(join(work, 'backups'));
    options = (overrides = {}) =>
      resolveOptions(backupOptionsSchema, {
        flags: {
          dataDir,
          to: join(work, 'backups'),
          stateDir: join(work, 'state'),
          mountRoot: join(work, 'mnt'),
          provider: 'fake',
          quiesce: 'fsfreeze',
          ...overrides,
        },
      });
  });
  afterAll(async () => {
    if (dataDir) await stopDss(await inspectDataDir(dataDir)).catch(() => undefined);
    await volume?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('freezes only for the snapshot call and reports that pause', async () => {
    const result = await runBackup(
      options({ providerOptions: { hang: { method: 'createSnapshots', ms: 300 } } }),
      { log },
    );

    expect(result.exitCode).toBe(0);
    expect(result.manifest.quiesce).toBe('fsfreeze');
    expect(result.manifest.pauseMs).toBeGreaterThanOrEqual(300);
    // Below the 5 s --max-pause watchdog (a loaded machine stretches the freeze and thaw calls).
    expect(result.manifest.pauseMs).toBeLessThan(5_000);
    await expectWritable(dataDir);
  });

  it('thaws at --max-pause when the snapshot call hangs, fails, and leaves no snapshot', async () => {
    const started = Date.now();
    const run_ = runBackup(
      options({ maxPause: '1s', providerOptions: { hang: { method: 'createSnapshots', ms: 6_000 } } }),
      { log },
    );
    // While the call still hangs, the filesystem must already be writable again.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    await expectWritable(dataDir, 1_000);

    await expect(run_).rejects.toMatchObject({ code: 'TIMEOUT', exitCode: 1 });
    await expect(run_).rejects.toThrow(
      /did not return within --max-pause \(1000 ms\); the filesystem was thawed/,
    );
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(Object.keys((await readFakeState(join(work, 'state'))).snapshots)).toEqual([]);
    expect(leftoverJournals(join(work, 'state'))).toEqual([]);
  });

  it('refuses to freeze a filesystem that also holds its state dir', async () => {
    const run_ = runBackup(options({ stateDir: join(dataDir, 'local', 'dssnap-state') }), { log });

    await expect(run_).rejects.toMatchObject({ code: 'UNSUPPORTED', exitCode: 5 });
    await expect(run_).rejects.toThrow(/also holds dssnap's own files/);
    await expectWritable(dataDir);
  });
});

describe('fsfreeze refusals', () => {
  let host: DssHost;
  beforeAll(async () => {
    host = await createDssHost({ storage: 'plain' });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('never freezes the root filesystem', async () => {
    const run_ = runBackup(host.options({ mode: 'snapshot', provider: 'fake', quiesce: 'fsfreeze' }), {
      log,
    });

    await expect(run_).rejects.toMatchObject({ code: 'UNSUPPORTED', exitCode: 5 });
    await expect(run_).rejects.toThrow(/Refusing to fsfreeze the root filesystem/);
    expect(await host.destinationEntries()).toEqual([]);
  });

  it('refuses a filesystem that cannot be frozen (tmpfs), naming the alternative', async () => {
    const mountPoint = await mkdtemp(join(tmpdir(), 'dssnap-tmpfs-'));
    await run('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', mountPoint]);
    try {
      await writeFile(join(mountPoint, 'placeholder'), '');
      await rm(join(mountPoint, 'placeholder'));
      const generated = await generateDataDir({ dir: mountPoint, preset: 'tiny' });

      const run_ = runBackup(
        host.options({ dataDir: generated.dataDir, mode: 'snapshot', provider: 'fake', quiesce: 'fsfreeze' }),
        { log },
      );

      await expect(run_).rejects.toMatchObject({ code: 'UNSUPPORTED', exitCode: 5 });
      await expect(run_).rejects.toThrow(/fsfreeze is not supported on tmpfs/);
    } finally {
      await run('umount', [mountPoint]);
      await rm(mountPoint, { recursive: true, force: true });
    }
  });
});
