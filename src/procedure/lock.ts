/**
 * One lock per DATA_DIR: `<stateDir>/locks/<sha256(realpath(dataDir)), 16 hex>.lock` holding
 * `{ runId, pid, since, dataDir, hostname, bootId, startTime }`. Two runs on one DATA_DIR would
 * snapshot, mount and copy over each other. A lock whose process is gone is stale: the next run
 * takes it over and is told which run to recover first.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DssnapError } from '../errors.js';
import { currentProcessIdentity, mayStillRun, type ProcessIdentity } from './process-identity.js';

export { isProcessAlive } from './process-identity.js';

export interface LockInfo extends ProcessIdentity {
  runId: string;
  /** ISO-8601 time the lock was taken. */
  since: string;
  /** The real path of the locked DATA_DIR. */
  dataDir: string;
}

export interface Lock {
  readonly path: string;
  readonly info: LockInfo;
  /** Remove the lock. Idempotent; leaves alone a lock another run has taken over since. */
  release(): void;
}

export interface AcquiredLock {
  lock: Lock;
  /** The run whose stale lock was taken over: recover it before going on. */
  staleRunId?: string;
  /** The stale lock that was taken over, when it was readable. */
  stale?: LockInfo;
}

type LockFile =
  | { state: 'missing' }
  | { state: 'damaged'; raw: string }
  | { state: 'ok'; raw: string; info: LockInfo };

/** Where the lock of `dataDir` lives. Throws NOT_A_DATA_DIR when `dataDir` does not exist. */
export function lockPath(stateDir: string, dataDir: string): string {
  const digest = createHash('sha256').update(realDataDir(dataDir)).digest('hex').slice(0, 16);
  return join(stateDir, 'locks', `${digest}.lock`);
}

/** The lock on `dataDir`, live or stale, or undefined when there is none (or it is unreadable). */
export function readLock(stateDir: string, dataDir: string): LockInfo | undefined {
  const file = readLockFile(lockPath(stateDir, dataDir));
  return file.state === 'ok' ? file.info : undefined;
}

/** Every readable lock in the state dir, live or stale. */
export function listLocks(stateDir: string): { path: string; info: LockInfo }[] {
  return readLocks(stateDir).map(({ path, info }) => ({ path, info }));
}

function readLocks(stateDir: string): { path: string; raw: string; info: LockInfo }[] {
  const dir = join(stateDir, 'locks');
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.endsWith('.lock'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return names.flatMap((name) => {
    const path = join(dir, name);
    const file = readLockFile(path);
    return file.state === 'ok' ? [{ path, raw: file.raw, info: file.info }] : [];
  });
}

/** True while the process holding `info` may still run (always true for a lock taken on another host). */
export function isLockHeld(info: LockInfo): boolean {
  return mayStillRun(info);
}

/**
 * Lock `dataDir` for `runId`. Returns when the lock is this process's; a stale lock (its process is
 * gone, or the host rebooted) is taken over and reported in `staleRunId`. Throws LOCKED when a
 * live process holds it. Not re-entrant: a second call for the same DATA_DIR in this process
 * is refused like any other holder.
 */
export function acquireLock(stateDir: string, dataDir: string, runId: string): AcquiredLock {
  const path = lockPath(stateDir, dataDir);
  mkdirSync(join(stateDir, 'locks'), { recursive: true });
  const info: LockInfo = {
    runId,
    since: new Date().toISOString(),
    dataDir: realDataDir(dataDir),
    ...currentProcessIdentity(),
  };
  const raw = `${JSON.stringify(info)}\n`;
  let stale: LockInfo | undefined;
  let takenOver = false;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (createExclusive(path, raw)) {
      const lock = heldLock(path, info, raw);
      if (!takenOver) return { lock };
      return stale ? { lock, staleRunId: stale.runId, stale } : { lock };
    }
    const existing = readLockFile(path);
    if (existing.state === 'missing') continue;
    if (existing.state === 'ok' && isLockHeld(existing.info)) throw lockedError(existing.info);
    if (moveAsideIfUnchanged(path, existing.raw)) {
      takenOver = true;
      if (existing.state === 'ok') stale = existing.info;
    }
  }
  // Only reachable when other processes keep taking and dropping the lock under us.
  throw new DssnapError(
    'LOCKED',
    `DATA_DIR ${info.dataDir} is being locked and unlocked by other processes`,
    {
      hint: 'Another dssnap run is starting on this DATA_DIR; wait for it to finish and try again.',
      details: { lockPath: path },
    },
  );
}

/**
 * Remove the locks left by `runId` once its process is gone (after recovering that run). Returns the
 * removed paths. Idempotent; a lock held by a live process is never removed.
 */
export function removeStaleLocksOf(stateDir: string, runId: string): string[] {
  const removed: string[] = [];
  for (const { path, raw, info } of readLocks(stateDir)) {
    if (info.runId !== runId || isLockHeld(info)) continue;
    if (moveAsideIfUnchanged(path, raw)) removed.push(path);
  }
  return removed;
}

function heldLock(path: string, info: LockInfo, raw: string): Lock {
  return {
    path,
    info,
    release() {
      const current = readLockFile(path);
      if (current.state !== 'missing' && current.raw === raw) rmSync(path, { force: true });
    },
  };
}

/**
 * Create `path` with `content` only if it does not exist. Written to a temporary file first and then
 * hard-linked (link(2) fails with EEXIST exactly like open(O_EXCL)), so a crash never leaves a lock
 * file that exists but is empty.
 */
function createExclusive(path: string, content: string): boolean {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(temporary, 'wx', 0o644);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temporary, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    rmSync(temporary, { force: true });
  }
}

/**
 * Remove a stale lock, unless another process replaced it after we read it: two runs may find the
 * same stale lock at once, and the slower one must not delete the faster one's fresh lock.
 */
function moveAsideIfUnchanged(path: string, expectedRaw: string): boolean {
  const aside = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.stale`;
  try {
    renameSync(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  const moved = readLockFile(aside);
  if (moved.state !== 'missing' && moved.raw === expectedRaw) {
    rmSync(aside, { force: true });
    return true;
  }
  try {
    linkSync(aside, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  rmSync(aside, { force: true });
  return false;
}

function readLockFile(path: string): LockFile {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    throw error;
  }
  try {
    const info = JSON.parse(raw) as LockInfo;
    if (typeof info.runId === 'string' && Number.isInteger(info.pid) && typeof info.hostname === 'string') {
      return { state: 'ok', raw, info };
    }
  } catch {
    // Damaged: treated as stale below.
  }
  return { state: 'damaged', raw };
}

function lockedError(holder: LockInfo): DssnapError {
  const where = holder.hostname === hostname() ? '' : ` on host ${holder.hostname}`;
  return new DssnapError(
    'LOCKED',
    `DATA_DIR ${holder.dataDir} is locked by run ${holder.runId} (pid ${holder.pid}${where}) since ${holder.since}`,
    {
      hint: `Wait for run ${holder.runId} to finish. If process ${holder.pid} is gone or hung (stop it first), run 'dssnap recover' to undo what it left and free the lock.`,
      details: { ...holder },
    },
  );
}

function realDataDir(dataDir: string): string {
  try {
    return realpathSync(dataDir);
  } catch (error) {
    throw new DssnapError('NOT_A_DATA_DIR', `DATA_DIR ${dataDir} does not exist`, {
      hint: 'Check the --data-dir option or the dataDir setting of the config file.',
      cause: error,
      details: { dataDir },
    });
  }
}
