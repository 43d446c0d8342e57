/**
 * `dssnap demo`: the whole procedure on a throw-away btrfs loop volume holding a generated DATA_DIR
 * (as root), or a cold backup in a temp dir without root. Two runs show the incremental cost.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBackup } from '../../backup/backup.js';
import type { Manifest } from '../../catalog/manifest.js';
import { backupOptionsSchema, resolveOptions } from '../../config.js';
import { startDss, stopDss } from '../../dss/control.js';
import { inspectDataDir } from '../../dss/layout.js';
import { formatBytes, formatDuration } from '../../duration.js';
import { run } from '../../host/exec.js';
import type { Logger } from '../../log.js';
import type { DemoArgs } from '../commands/demo.js';
import { loggerFor } from '../context.js';
import { printJson, reportFailure } from '../output.js';
import { describeManifest } from './backup.js';
import { formatTable } from './list.js';

const nobody = { uid: 65534, gid: 65534 };

export async function handleDemo(argv: DemoArgs): Promise<number> {
  const log = loggerFor({ ...argv, logLevel: argv.logLevel ?? 'error' });
  const say = (text: string) => {
    if (!argv.json) process.stdout.write(`${text}\n`);
  };
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    const work = await mkdtemp(join(tmpdir(), 'dssnap-demo-'));
    await chmod(work, 0o755);
    cleanups.push(() => rm(work, { recursive: true, force: true }));
    const { generateDataDir, mutateDataDir } = await import('../../../test/fixtures/generate-data-dir.js');
    const isRoot = process.geteuid?.() === 0;
    const btrfs = isRoot && (await btrfsAvailable());
    let dataDirPath: string;
    if (btrfs) {
      const { createLoopVolume } = await import('../../../test/support/loop-volume.js');
      say('Creating a throw-away 2 GiB btrfs loop volume with DATA_DIR as a subvolume...');
      const volume = await createLoopVolume({ fsType: 'btrfs', sizeMb: 2048, subvolume: 'dss_data' });
      cleanups.unshift(() => volume.dispose());
      await makeTraversable(volume.subvolumePath!);
      dataDirPath = volume.subvolumePath!;
    } else {
      say(
        isRoot
          ? 'btrfs is not available: this demo falls back to a cold backup in a temp dir.'
          : 'Not root: this demo falls back to a cold backup in a temp dir (snapshots and mounts need root).',
      );
      dataDirPath = join(work, 'dss_data');
    }
    const generated = await generateDataDir({
      dir: dataDirPath,
      preset: argv.preset,
      seed: 42,
      ...(isRoot ? { owner: nobody } : {}),
    });
    say(
      `Generated a DSS ${'design'} DATA_DIR: ${generated.files} files, ${formatBytes(generated.bytes)} at ${generated.dataDir}`,
    );
    const info = await inspectDataDir(generated.dataDir);
    await startDss(info, { log });
    cleanups.unshift(() => stopDss(info, { log }).catch(() => undefined));
    say('Started its DSS (the generated bin/dss runs a backend that writes into DATA_DIR every 100 ms).');

    const destination = join(work, 'backups');
    const options = resolveOptions(backupOptionsSchema, {
      flags: {
        dataDir: generated.dataDir,
        to: destination,
        stateDir: join(work, 'state'),
        mountRoot: join(work, 'mnt'),
        ...(btrfs
          ? { snapshotDir: join(dataDirPath, '..', '.dssnap-snapshots') }
          : { mode: 'cold', force: true }),
      },
    });

    say(
      `\n$ dssnap backup --data-dir ${generated.dataDir} --to ${destination}${btrfs ? '' : ' --mode cold --force'}`,
    );
    const first = await runBackup(options, { log });
    say(describeManifest(first.manifest));

    const mutated = await mutateDataDir({ dataDir: generated.dataDir, fraction: 0.01, seed: 7 });
    say(`Changed ${mutated.changed.length} files (1 %), then ran the same command again:`);
    const second = await runBackup(options, { log });
    say(describeManifest(second.manifest));

    say(`$ dssnap list --to ${destination}`);
    say(formatTable([first.manifest, second.manifest]));
    const onDisk = await diskUsage(destination, [first.manifest, second.manifest]);
    say(
      `On disk: generation 1 takes ${formatBytes(onDisk[0] ?? 0)}; generation 2, a full browsable tree too, adds only ${formatBytes(onDisk[1] ?? 0)} (unchanged files are hard links).`,
    );
    say(
      `Pause of DSS writers: ${formatDuration(first.manifest.pauseMs)} and ${formatDuration(second.manifest.pauseMs)}${btrfs ? ' (btrfs snapshot)' : ' (cold: DSS stopped for the whole copy)'}.`,
    );
    if (argv.json)
      printJson({ ok: true, backups: [first.manifest, second.manifest], diskUsageBytes: onDisk });
    if (argv.keep) {
      say(
        `\nKept for a look: ${work} (DATA_DIR ${generated.dataDir}). Remove it with: dssnap demo cleanup is manual — umount the loop volume, losetup -d, rm -rf ${work}`,
      );
      cleanups.length = 0;
    }
    return 0;
  } catch (error) {
    return reportFailure(error, argv, log);
  } finally {
    for (const cleanup of cleanups)
      await cleanup().catch((error) => log.warn({ err: error }, 'Demo clean-up step failed'));
    if (!argv.keep) say('Cleaned up: DSS stopped; the demo volume, its snapshots and the backups removed.');
  }
}

async function btrfsAvailable(): Promise<boolean> {
  const { readFile } = await import('node:fs/promises');
  const filesystems = await readFile('/proc/filesystems', 'utf8').catch(() => '');
  if (!/\bbtrfs\b/.test(filesystems)) await run('modprobe', ['btrfs']).catch(() => undefined);
  const again = await readFile('/proc/filesystems', 'utf8').catch(() => '');
  return /\bbtrfs\b/.test(again);
}

/** bin/dss runs as `nobody`, which must be able to reach DATA_DIR through its parents (mkdtemp: 0700). */
async function makeTraversable(path: string): Promise<void> {
  let current = path;
  while (current !== '/' && current !== tmpdir()) {
    current = join(current, '..');
    await chmod(current, 0o755).catch(() => undefined);
  }
}

/** Disk space each generation adds, in order (du counts a hard-linked inode once, first seen). */
async function diskUsage(destination: string, manifests: readonly Manifest[]): Promise<number[]> {
  const dirs = manifests.map((m) => m.copy?.location ?? join(destination, m.id));
  const { stdout } = await run('du', ['-s', '-B1', ...dirs]);
  return stdout
    .trim()
    .split('\n')
    .map((line) => Number(line.split(/\s+/)[0]));
}

export type { Logger };
