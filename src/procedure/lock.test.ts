import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DssnapError, ExitCode } from '../errors.js';
import {
  acquireLock,
  isProcessAlive,
  type LockInfo,
  listLocks,
  lockPath,
  readLock,
  removeStaleLocksOf,
} from './lock.js';
import { currentProcessIdentity } from './process-identity.js';
import { startChild } from './test-support/spawn-child.js';
import { type ChildTree, transpileForChild } from './test-support/transpile.js';

let root: string;
let stateDir: string;
let dataDir: string;

beforeEach(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'dssnap-lock-')));
  stateDir = join(root, 'state');
  dataDir = join(root, 'dss-data');
  mkdirSync(dataDir);
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A pid that existed a moment ago and is gone now. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '0']);
  return child.pid!;
}

function writeForeignLock(info: Partial<LockInfo>): void {
  const path = lockPath(stateDir, dataDir);
  mkdirSync(dirname(path), { recursive: true });
  const base: LockInfo = {
    runId: 'old-run',
    since: '2025-01-01T00:00:00.000Z',
    dataDir,
    ...currentProcessIdentity(),
  };
  writeFileSync(path, JSON.stringify({ ...base, ...info }));
}

function lockedError(action: () => unknown): DssnapError {
  try {
    action();
  } catch (error) {
    if (error instanceof DssnapError) return error;
    throw error;
  }
  throw new Error('expected a DssnapError');
}

describe('acquireLock', () => {
  it('creates locks/<16 hex>.lock with the run, pid, time, DATA_DIR and host, and removes it on release', () => {
    const { lock, staleRunId } = acquireLock(stateDir, dataDir, 'run-1');

    const content = JSON.parse(readFileSync(lock.path, 'utf8'));
    lock.release();
    lock.release();

    expect(staleRunId).toBeUndefined();
    expect(basename(lock.path)).toMatch(/^[0-9a-f]{16}\.lock$/);
    expect(dirname(lock.path)).toBe(join(stateDir, 'locks'));
    expect(content).toMatchObject({
      runId: 'run-1',
      pid: process.pid,
      dataDir,
      hostname: expect.any(String),
    });
    expect(Date.parse(content.since)).not.toBeNaN();
    expect(existsSync(lock.path)).toBe(false);
  });

  it('refuses a second run on the same DATA_DIR, even through a symlink, with who holds it and since when', () => {
    const { lock } = acquireLock(stateDir, dataDir, 'run-1');
    const alias = join(root, 'alias');
    symlinkSync(dataDir, alias);

    const error = lockedError(() => acquireLock(stateDir, alias, 'run-2'));

    expect(error.code).toBe('LOCKED');
    expect(error.exitCode).toBe(ExitCode.locked);
    expect(error.message).toBe(
      `DATA_DIR ${dataDir} is locked by run run-1 (pid ${process.pid}) since ${lock.info.since}`,
    );
    expect(error.hint).toContain('dssnap recover');
    lock.release();
  });

  it('locks different DATA_DIRs independently', () => {
    const other = join(root, 'other-data');
    mkdirSync(other);

    const first = acquireLock(stateDir, dataDir, 'run-1');
    const second = acquireLock(stateDir, other, 'run-2');

    expect(first.lock.path).not.toBe(second.lock.path);
    expect(
      listLocks(stateDir)
        .map(({ info }) => info.runId)
        .sort(),
    ).toEqual(['run-1', 'run-2']);
  });

  it.each<{ name: string; stale: () => Partial<LockInfo> }>([
    { name: 'its process is gone', stale: () => ({ pid: deadPid() }) },
    { name: 'the host rebooted since', stale: () => ({ bootId: '00000000-0000-0000-0000-000000000000' }) },
    { name: 'its pid now belongs to a newer process', stale: () => ({ startTime: '1' }) },
  ])('takes over a stale lock when $name, and names the run to recover', ({ stale }) => {
    writeForeignLock(stale());

    const { lock, staleRunId, stale: staleInfo } = acquireLock(stateDir, dataDir, 'run-2');

    expect(staleRunId).toBe('old-run');
    expect(staleInfo?.runId).toBe('old-run');
    expect(readLock(stateDir, dataDir)?.runId).toBe('run-2');
    lock.release();
  });

  it('takes over an unreadable lock file without naming a run', () => {
    const path = lockPath(stateDir, dataDir);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, 'not json');

    const { lock, staleRunId } = acquireLock(stateDir, dataDir, 'run-2');

    expect(staleRunId).toBeUndefined();
    expect(readLock(stateDir, dataDir)?.runId).toBe('run-2');
    lock.release();
  });

  it('treats a lock taken on another host as held, and says which host', () => {
    writeForeignLock({ hostname: 'other-host.example', pid: 4242 });

    const error = lockedError(() => acquireLock(stateDir, dataDir, 'run-2'));

    expect(error.message).toContain('(pid 4242 on host other-host.example)');
  });

  it('does not remove on release a lock that another run has taken over since', () => {
    const { lock } = acquireLock(stateDir, dataDir, 'run-1');
    writeForeignLock({ runId: 'run-9' });

    lock.release();

    expect(readLock(stateDir, dataDir)?.runId).toBe('run-9');
  });

  it('refuses a DATA_DIR that does not exist', () => {
    const error = lockedError(() => acquireLock(stateDir, join(root, 'missing'), 'run-1'));

    expect(error.code).toBe('NOT_A_DATA_DIR');
    expect(error.message).toBe(`DATA_DIR ${join(root, 'missing')} does not exist`);
  });
});

describe('removeStaleLocksOf', () => {
  it('removes the locks of a dead run and leaves live ones', () => {
    writeForeignLock({ pid: deadPid() });
    const other = join(root, 'other-data');
    mkdirSync(other);
    const live = acquireLock(stateDir, other, 'old-run');

    const removed = removeStaleLocksOf(stateDir, 'old-run');

    expect(removed).toEqual([lockPath(stateDir, dataDir)]);
    expect(readLock(stateDir, dataDir)).toBeUndefined();
    expect(readLock(stateDir, other)?.runId).toBe('old-run');
    live.lock.release();
  });
});

describe('isProcessAlive', () => {
  it.each<{ name: string; pid: () => number; alive: boolean }>([
    { name: 'this process', pid: () => process.pid, alive: true },
    { name: 'pid 1 (init)', pid: () => 1, alive: true },
    { name: 'an exited process', pid: deadPid, alive: false },
    { name: 'pid 0', pid: () => 0, alive: false },
    { name: 'a negative pid', pid: () => -5, alive: false },
  ])('$name → $alive', ({ pid, alive }) => {
    expect(isProcessAlive(pid())).toBe(alive);
  });
});

describe('two processes', () => {
  let tree: ChildTree;

  beforeAll(() => {
    tree = transpileForChild();
  });

  afterAll(() => {
    tree.remove();
  });

  it('the second gets LOCKED while the first lives, and takes the lock over once it was killed', async () => {
    const child = startChild(tree.childScript, ['hold-lock', stateDir, dataDir, 'child-run']);
    try {
      await child.waitForLine(/^locked$/);

      const error = lockedError(() => acquireLock(stateDir, dataDir, 'parent-run'));
      child.process.kill('SIGKILL');
      await child.exited;
      const { lock, staleRunId } = acquireLock(stateDir, dataDir, 'parent-run');

      expect(error.code).toBe('LOCKED');
      expect(error.message).toMatch(
        new RegExp(
          `^DATA_DIR ${dataDir} is locked by run child-run \\(pid ${child.pid}\\) since \\d{4}-\\d\\d-\\d\\dT`,
        ),
      );
      expect(staleRunId).toBe('child-run');
      lock.release();
    } finally {
      child.process.kill('SIGKILL');
    }
  });
});
