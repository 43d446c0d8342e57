/**
 * bin/dss control against the generated DATA_DIR's bin/dss, run as `nobody` through runuser, as dssnap
 * does in production (it runs as root; bin/dss refuses root).
 */
import { readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backendLog, pidFile, stopDelayFile, stopHangFile } from '../../test/fixtures/dss-script.js';
import { createFixtureRoot, generateDataDir } from '../../test/fixtures/generate-data-dir.js';
import { findTool } from '../host/exec.js';
import { dssCommand, dssStatus, parseDssStatus, startDss, stopDss } from './control.js';
import { type DataDirInfo, inspectDataDir } from './layout.js';

const nobody = { uid: 65534, gid: 65534 };
let root: string;
const startedPids = new Set<number>();

beforeAll(async () => {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'control.test.ts must run as root: it runs bin/dss as nobody through runuser, like dssnap',
    );
  }
  if (!findTool('runuser')) throw new Error('control.test.ts needs runuser (Debian package util-linux)');
  root = await createFixtureRoot('dssnap-control-');
});

afterAll(async () => {
  // Whatever a failed test left running: the fake backends of every DATA_DIR.
  for (const pid of startedPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await rm(root, { recursive: true, force: true });
});

async function newDataDir(name: string): Promise<DataDirInfo> {
  const { dataDir } = await generateDataDir({
    dir: join(root, name),
    owner: nobody,
    files: 100,
    bytes: 100_000,
  });
  return inspectDataDir(dataDir);
}

async function backendPid(info: DataDirInfo): Promise<number> {
  const pid = Number((await readFile(join(info.path, pidFile), 'utf8')).trim());
  startedPids.add(pid);
  return pid;
}

/** Alive and not a zombie (this machine's init does not reap orphans, so kill(pid, 0) is not enough). */
async function isAlive(pid: number): Promise<boolean> {
  try {
    const state = (await readFile(`/proc/${pid}/stat`, 'utf8')).replace(/^.*\) /s, '')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

async function logSize(info: DataDirInfo): Promise<number> {
  return (await stat(join(info.path, backendLog)).catch(() => ({ size: 0 }))).size;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('start, status, stop through runuser as the DATA_DIR owner', () => {
  let info: DataDirInfo;

  beforeAll(async () => {
    info = await newDataDir('lifecycle');
  });

  it('reports a fresh DATA_DIR as stopped', async () => {
    const state = await dssStatus(info);

    expect(state).toBe('stopped');
  });

  it('starts DSS: a backend owned by nobody runs, writes its log and its pid file', async () => {
    const result = await startDss(info, { timeoutMs: 10_000 });

    expect(result.changed).toBe(true);
    expect(result.output).toMatch(/DSS started, pid=\d+/);
    const pid = await backendPid(info);
    expect(await isAlive(pid)).toBe(true);
    expect((await stat(`/proc/${pid}`)).uid).toBe(nobody.uid);
    const before = await logSize(info);
    await sleep(400);
    expect(await logSize(info)).toBeGreaterThan(before);
    expect(await dssStatus(info)).toBe('running');
  });

  it('does nothing when asked to start a running DSS', async () => {
    const result = await startDss(info, { timeoutMs: 10_000 });

    expect(result).toMatchObject({ changed: false, output: '' });
  });

  it('stops DSS: the backend process is gone, its writes stop, the pid file is removed', async () => {
    const pid = await backendPid(info);

    const result = await stopDss(info, { timeoutMs: 10_000 });

    expect(result.changed).toBe(true);
    expect(await isAlive(pid)).toBe(false);
    await expect(stat(join(info.path, pidFile))).rejects.toThrow(/ENOENT/);
    const after = await logSize(info);
    await sleep(300);
    expect(await logSize(info)).toBe(after);
    expect(await dssStatus(info)).toBe('stopped');
  });

  it('does nothing when asked to stop a stopped DSS', async () => {
    const result = await stopDss(info, { timeoutMs: 10_000 });

    expect(result.changed).toBe(false);
  });
});

describe('failures', () => {
  it('throws DSS_CONTROL_FAILED within the timeout when stop hangs, and DSS keeps running', async () => {
    const info = await newDataDir('hang');
    await startDss(info, { timeoutMs: 10_000 });
    const pid = await backendPid(info);
    await writeFile(join(info.path, stopHangFile), '');
    const started = performance.now();

    const stop = stopDss(info, { timeoutMs: 1_500 });

    await expect(stop).rejects.toMatchObject({
      code: 'DSS_CONTROL_FAILED',
      message: expect.stringMatching(
        /^bin\/dss stop did not finish within 1.5 s and was killed: Waiting for DSS supervisor to stop/,
      ),
      hint: expect.stringContaining('DSS may still be running'),
    });
    // runuser forwards the kill to bin/dss and gives it 2 s before SIGKILL: allow for that.
    expect(performance.now() - started).toBeLessThan(1_500 + 4_000);
    expect(await isAlive(pid)).toBe(true);

    await unlink(join(info.path, stopHangFile));
    await stopDss(info, { timeoutMs: 10_000 });
    expect(await isAlive(pid)).toBe(false);
  });

  it('throws DSS_CONTROL_FAILED when stop is slower than the timeout', async () => {
    const info = await newDataDir('slow');
    await startDss(info, { timeoutMs: 10_000 });
    await writeFile(join(info.path, stopDelayFile), '5');

    const stop = stopDss(info, { timeoutMs: 1_000 });

    await expect(stop).rejects.toMatchObject({ code: 'DSS_CONTROL_FAILED', details: { timedOut: true } });
    await writeFile(join(info.path, stopDelayFile), '0.1');
    await stopDss(info, { timeoutMs: 10_000 });
  });

  it('reports bin/dss refusing to run as root instead of calling DSS stopped', async () => {
    const info = await newDataDir('as-root');
    const runDirectlyAsRoot = { ...info, owner: { uid: 0, gid: 0, user: 'root' } };

    const status = dssStatus(runDirectlyAsRoot);

    await expect(status).rejects.toMatchObject({
      code: 'DSS_CONTROL_FAILED',
      message: expect.stringContaining('DSS must not be run as root'),
    });
  });

  it('refuses to start a DATA_DIR moved without installer.sh -u, and says so', async () => {
    const moved = await newDataDir('before-move');
    await rename(moved.path, join(root, 'after-move'));
    const info = await inspectDataDir(join(root, 'after-move'));

    const start = startDss(info, { timeoutMs: 10_000 });

    await expect(start).rejects.toMatchObject({
      code: 'DSS_CONTROL_FAILED',
      message: expect.stringContaining('appears to be a copy'),
      hint: expect.stringContaining(`installer.sh -d ${info.path} -u`),
    });
  });
});

describe('dssCommand', () => {
  const owned = (uid: number, user?: string) => ({ path: '/data/dss', owner: { uid, gid: uid, user } });

  it.each([
    [
      'root, DATA_DIR owned by dataiku',
      owned(1001, 'dataiku'),
      0,
      ['runuser', '-u', 'dataiku', '--', '/data/dss/bin/dss', 'stop'],
    ],
    ['root, DATA_DIR owned by root', owned(0, 'root'), 0, ['/data/dss/bin/dss', 'stop']],
    ['the owner itself', owned(1001, 'dataiku'), 1001, ['/data/dss/bin/dss', 'stop']],
    ['another non-root user', owned(1001, 'dataiku'), 1002, ['/data/dss/bin/dss', 'stop']],
  ])('as %s runs %j', (_, info, uid, expected) => {
    const { file, args } = dssCommand(info, 'stop', uid);

    expect([file, ...args]).toEqual(expected);
  });

  it('refuses an owner uid without a user name, which runuser cannot use', () => {
    const command = (): unknown => dssCommand(owned(4242), 'start', 0);

    expect(command).toThrow(/uid 4242 has no entry in \/etc\/passwd/);
  });
});

describe('parseDssStatus', () => {
  it('reads supervisor lines and ignores the rest', () => {
    const output = [
      'backend                          RUNNING   pid 123, uptime 0:00:05',
      'ipython                          STOPPED   Not started',
      'nginx                            FATAL     Exited too quickly',
      'dss: some other message',
    ].join('\n');

    const processes = parseDssStatus(output);

    expect(processes).toEqual([
      { name: 'backend', state: 'RUNNING', pid: 123 },
      { name: 'ipython', state: 'STOPPED' },
      { name: 'nginx', state: 'FATAL' },
    ]);
  });
});
