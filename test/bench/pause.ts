/**
 * (a) Pause: the longest time a process writing into DATA_DIR is blocked during a whole backup run
 * (DESIGN.md §5), for the same generated tree backed up four ways: a dssnap btrfs snapshot, a dssnap
 * fsfreeze snapshot through the fake provider on XFS, the classic `dss stop; GZIP=-9 tar -cpzf; dss start`
 * by hand, and `dssnap --mode cold`. Each run is a first (full) backup into its own destination.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { StepKind } from '../../src/backup/undo-steps.js';
import { dssCommand, startDss, stopDss } from '../../src/dss/control.js';
import { type DataDirInfo, inspectDataDir } from '../../src/dss/layout.js';
import { formatDuration } from '../../src/duration.js';
import { run } from '../../src/host/exec.js';
import { backendLog } from '../fixtures/dss-script.js';
import { generateDataDir } from '../fixtures/generate-data-dir.js';
import { createDssHost, nobody } from '../support/dss-host.js';
import { createLoopVolume } from '../support/loop-volume.js';
import { withResource } from './cleanup.js';
import {
  type BackupTarget,
  backupArgs,
  type DssnapRun,
  type LogLine,
  runDssnapBackup,
  stepMs,
} from './dssnap-cli.js';
import { treeTotals } from './tree-stats.js';
import { type Gap, gapMs, longestGapIn, startWriter } from './writer.js';

export interface PauseConfig {
  files: number;
  bytes: number;
  volumeSizeMb: number;
  /** The writer runs this long before the backup starts: its noise floor. */
  idleMs: number;
  /** The fake provider's createSnapshots sleeps this long, standing in for a cloud API call. */
  apiDelayMs: number;
}

export interface SnapshotPause {
  /** Longest writer gap from the start to the end of the dssnap process (the DESIGN measure). */
  wholeRunMs: number;
  /** The steps of the run that gap overlaps. */
  wholeRunDuring: string;
  /** Longest writer gap overlapping the quiesce + snapshot steps (from dssnap's JSON log). */
  atSnapshotMs: number;
  /** Longest writer gap before the backup started. */
  idleMs: number;
  /** The pause dssnap itself reports in its manifest. */
  manifestPauseMs: number;
  snapshotStepMs: number;
  backupWallMs: number;
  writes: number;
  writerStoppedCleanly: boolean;
}

export interface FreezePause extends SnapshotPause {
  /** The fake's `cp -a` of the tree, inside the freeze: the snapshot step less the simulated API delay. */
  fakeCopyMs: number;
  /** atSnapshotMs less the fake's copy: what a cloud API answering in apiDelayMs would give. An estimate. */
  estimatedCloudMs: number;
}

export interface ColdPause {
  /** Longest gap in DSS's own backend heartbeat (a line every 100 ms) during the run: DSS down time. */
  downtimeMs: number;
  wallMs: number;
}

export interface PauseResult {
  tree: { files: number; bytes: number };
  btrfs: SnapshotPause;
  fsfreeze: FreezePause;
  classic: ColdPause & { stopToStartMs: number; archiveBytes: number };
  dssnapCold: ColdPause & { manifestPauseMs: number };
}

export async function measurePause(config: PauseConfig): Promise<PauseResult> {
  const generate = { files: config.files, bytes: config.bytes, seed: 1 };
  const onBtrfs = await withResource(
    await createDssHost({ storage: 'btrfs', generate, volumeSizeMb: config.volumeSizeMb }),
    async (host) => {
      await startDss(host.info);
      const tree = await treeTotals(host.dataDir);
      const btrfs = await snapshotPause(host, backupArgs(host), config.idleMs);
      const coldTarget = { ...host, destination: join(dirname(host.destination), 'cold-backups') };
      await mkdir(coldTarget.destination);
      const dssnapCold = await coldPause(host.info, async () => {
        const result = await runDssnapBackup(backupArgs(coldTarget, ['--mode', 'cold', '--force']));
        return { manifestPauseMs: result.manifest.pauseMs };
      });
      const classic = await coldPause(host.info, () =>
        classicColdBackup(host.info, join(dirname(host.destination), 'backup.tar.gz')),
      );
      return { tree, btrfs, dssnapCold, classic };
    },
  );
  const fsfreeze = await withResource(await createXfsHost(config), async (host) => {
    await startDss(host.info);
    const configFile = join(dirname(host.stateDir), 'fake-provider.json');
    await writeFile(
      configFile,
      JSON.stringify({
        providerOptions: { hang: { method: 'createSnapshots', ms: config.apiDelayMs }, pendingPolls: 0 },
      }),
    );
    const args = [
      '--provider',
      'fake',
      '--quiesce',
      'fsfreeze',
      '--max-pause',
      '10m',
      '--config',
      configFile,
    ];
    const measured = await snapshotPause(host, backupArgs(host, args), config.idleMs);
    const fakeCopyMs = Math.max(0, measured.snapshotStepMs - config.apiDelayMs);
    return { ...measured, fakeCopyMs, estimatedCloudMs: Math.max(0, measured.atSnapshotMs - fakeCopyMs) };
  });
  return { ...onBtrfs, fsfreeze };
}

/** Run a dssnap snapshot backup while the writer writes into DATA_DIR/tmp (same filesystem, not copied). */
async function snapshotPause(target: BackupTarget, args: string[], idleMs: number): Promise<SnapshotPause> {
  const writer = await startWriter(dirname(target.stateDir), join(target.dataDir, 'tmp', 'bench-writer'));
  const writerStarted = Date.now();
  let backup: DssnapRun;
  let started: number;
  let ended: number;
  try {
    await new Promise((resolve) => setTimeout(resolve, idleMs));
    started = Date.now();
    backup = await runDssnapBackup(args);
    ended = Date.now();
  } catch (error) {
    await writer.stop();
    throw error;
  }
  const report = await writer.stop();
  const steps = stepWindows(backup.logs);
  const window = snapshotWindow(steps);
  const longest = longestGapIn(report, started, ended);
  return {
    wholeRunMs: gapMs(longest),
    wholeRunDuring: longest ? stepsDuring(steps, longest, started) : 'nowhere',
    atSnapshotMs: gapMs(longestGapIn(report, window.from, window.to)),
    idleMs: gapMs(longestGapIn(report, writerStarted, started)),
    manifestPauseMs: backup.manifest.pauseMs,
    snapshotStepMs: stepMs(backup.manifest, StepKind.snapshot),
    backupWallMs: backup.wallMs,
    writes: report.writes,
    writerStoppedCleanly: report.stoppedCleanly,
  };
}

interface StepWindow {
  kind: string;
  undo: boolean;
  from: number;
  to: number;
}

/** When each step and undo ran, from the runner's log lines ('Step done' / 'Undone' carry end time and duration). */
function stepWindows(logs: readonly LogLine[]): StepWindow[] {
  return logs
    .filter((line) => (line.msg === 'Step done' || line.msg === 'Undone') && line.kind)
    .map((line) => ({
      kind: line.kind!,
      undo: line.msg === 'Undone',
      from: line.time - (line.durationMs ?? 0),
      to: line.time,
    }));
}

/** From the start of the quiesce (or snapshot) step to the end of the snapshot step or the thaw, ±2 ms. */
function snapshotWindow(steps: readonly StepWindow[]): { from: number; to: number } {
  const snapshot = steps.find((step) => step.kind === StepKind.snapshot && !step.undo);
  if (!snapshot) {
    throw new Error(
      "dssnap's log has no 'Step done' line for the snapshot step: cannot place the snapshot instant",
    );
  }
  const freeze = steps.filter((step) => step.kind === StepKind.freeze);
  return {
    from: Math.min(snapshot.from, ...freeze.map((step) => step.from)) - 2,
    to: Math.max(snapshot.to, ...freeze.map((step) => step.to)) + 2,
  };
}

/** Which steps (or undos) a gap overlaps, e.g. 'copy', and when it ended after the process started. */
function stepsDuring(steps: readonly StepWindow[], [start, end]: Gap, processStarted: number): string {
  const names = steps
    .filter((step) => step.from <= end && step.to >= start)
    .map((step) => `${step.undo ? 'undo ' : ''}${step.kind}`);
  const at = `at +${formatDuration(end - processStarted)}`;
  return names.length > 0
    ? `${names.join(' + ')}, ${at}`
    : `no step: start-up, preflight or after the undos, ${at}`;
}

/** Run a cold backup and read DSS's down time from its backend heartbeat log. */
async function coldPause<T extends object>(
  info: DataDirInfo,
  backup: () => Promise<T>,
): Promise<ColdPause & T> {
  const started = Date.now();
  const result = await backup();
  const ended = Date.now();
  const beats = (await readFile(join(info.path, backendLog), 'utf8'))
    .split('\n')
    .map((line) => Number.parseFloat(line) * 1000)
    .filter((time) => Number.isFinite(time) && time >= started - 1000 && time <= ended + 1000);
  let downtimeMs = 0;
  for (let index = 1; index < beats.length; index++) {
    downtimeMs = Math.max(downtimeMs, beats[index]! - beats[index - 1]!);
  }
  return { ...result, downtimeMs, wallMs: ended - started };
}

/** The DSS documentation's backup, by hand: `bin/dss stop; GZIP=-9 tar -cpzf backup.tar.gz DATA_DIR; bin/dss start`. */
async function classicColdBackup(
  info: DataDirInfo,
  archive: string,
): Promise<{ stopToStartMs: number; archiveBytes: number }> {
  // bin/dss refuses root: as the owner, like `runuser -u dataiku -- bin/dss stop`.
  const stop = dssCommand(info, 'stop');
  const start = dssCommand(info, 'start');
  const started = performance.now();
  await run(stop.file, stop.args, { cwd: info.path });
  try {
    await run('tar', ['-cpzf', archive, '-C', dirname(info.path), basename(info.path)], {
      env: { GZIP: '-9' },
      timeoutMs: 3_600_000,
    });
  } finally {
    await run(start.file, start.args, { cwd: info.path });
  }
  return { stopToStartMs: performance.now() - started, archiveBytes: (await stat(archive)).size };
}

interface XfsHost extends BackupTarget {
  info: DataDirInfo;
  dispose(): Promise<void>;
}

/** The same tree on an XFS loop volume, DATA_DIR at its mount root (fsfreeze freezes a whole filesystem). */
async function createXfsHost(config: PauseConfig): Promise<XfsHost> {
  const work = await mkdtemp(join(tmpdir(), 'dssnap-bench-xfs-'));
  await chmod(work, 0o755);
  const volume = await createLoopVolume({ fsType: 'xfs', sizeMb: config.volumeSizeMb }).catch(
    async (error) => {
      await rm(work, { recursive: true, force: true });
      throw error;
    },
  );
  let info: DataDirInfo | undefined;
  const dispose = async (): Promise<void> => {
    if (info) await stopDss(info).catch(() => undefined);
    await volume.dispose();
    await rm(work, { recursive: true, force: true });
  };
  try {
    await chmod(dirname(volume.mountPoint), 0o755);
    await chmod(volume.mountPoint, 0o755);
    await generateDataDir({
      dir: volume.mountPoint,
      files: config.files,
      bytes: config.bytes,
      seed: 1,
      owner: nobody,
    });
    info = await inspectDataDir(volume.mountPoint);
    const destination = join(work, 'backups');
    await mkdir(destination);
    return {
      info,
      dataDir: volume.mountPoint,
      destination,
      stateDir: join(work, 'state'),
      mountRoot: join(work, 'mnt'),
      dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}
