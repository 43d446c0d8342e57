/**
 * The per-file content index of a backup: one line per entry (path, type, mode, owner, size, mtime,
 * inode, sha256 of regular files, symlink target), gzip'd JSON lines in `<catalog>/<id>.files.jsonl.gz`,
 * next to the manifest and not inside it (a million files would make the manifest huge).
 *
 * Entries are in one canonical order — depth first, the children of a directory sorted by the bytes of
 * their names, a directory before its content — which is also the order of `tar --sort=name`. So an
 * index, a walk of a tree and a read of an archive are compared as merged streams, in constant memory.
 *
 * An rsync generation is hashed after the copy. Files rsync hard-linked to the previous generation keep
 * their inode, size and mtime: their hash is taken from the previous index instead of reading them, so
 * an incremental run reads only what changed. The files that are read go to a few worker threads
 * (hash-pool.ts): several reads in flight, the sha256 work on every core. An archive is hashed by reading it back after it is
 * written (decompress, parse, hash): the index then describes exactly what the archive holds.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, lstatSync, readdirSync, type Stats } from 'node:fs';
import { lstat, readlink, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip, createGzip } from 'node:zlib';
import { DssnapError } from '../errors.js';
import { createHashPool, defaultHashThreads } from './hash-pool.js';
import { readTarArchive } from './tar-reader.js';

export type EntryType = 'f' | 'd' | 'l' | 'o';

/** One index line. Short keys: the index of a million-file DATA_DIR stays small. */
export interface IndexEntry {
  /** Path relative to the backup root, `.` for the root. */
  p: string;
  /** f = regular file, d = directory, l = symlink, o = other (fifo, socket, device). */
  t: EntryType;
  /** Permission bits (incl. setuid/setgid/sticky). */
  m: number;
  u: number;
  g: number;
  /** Size of a regular file. */
  s?: number;
  /** mtime, whole seconds. */
  mt: number;
  /** Inode (trees only): with size and mtime, tells an unchanged hard-linked file. */
  i?: number;
  /** sha256 of a regular file's content. */
  h?: string;
  /** Symlink target. */
  l?: string;
  /** Archives: this file is a hard link to that (earlier) path; its content is checked there. */
  hl?: string;
}

export interface IndexStats {
  entries: number;
  files: number;
  /** Bytes of regular files. */
  bytes: number;
  /** Files read and hashed in this pass. */
  hashedFiles: number;
  hashedBytes: number;
  /** Files whose hash came from the previous index (unchanged, hard-linked). */
  reusedFiles: number;
  durationMs: number;
}

/** The counters of a pass that has read nothing yet. */
export function emptyIndexStats(): IndexStats {
  return { entries: 0, files: 0, bytes: 0, hashedFiles: 0, hashedBytes: 0, reusedFiles: 0, durationMs: 0 };
}

export const indexFormat = { format: 'dssnap-file-index', version: 1, algorithm: 'sha256' } as const;

/** `<catalogDir>/<backupId>.files.jsonl.gz`. */
export function indexFileName(backupId: string): string {
  return `${backupId}.files.jsonl.gz`;
}

/** Order of the canonical walk: path segments compared by their UTF-8 bytes, a parent before its children. */
export function comparePaths(a: string, b: string): number {
  if (a === b) return 0;
  if (a === '.') return -1;
  if (b === '.') return 1;
  const left = a.split('/');
  const right = b.split('/');
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    const order = compareNames(left[i]!, right[i]!);
    if (order !== 0) return order;
  }
  return left.length - right.length;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  // UTF-16 order equals byte order for ASCII; strcmp (tar --sort=name) compares UTF-8 bytes.
  if (isAscii(a) && isAscii(b)) return a < b ? -1 : 1;
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export interface WalkOptions {
  /** Hash regular files (default true). */
  hash?: boolean;
  /** Entries of a previous index, in canonical order: unchanged files reuse their hash. */
  previous?: AsyncIterable<IndexEntry>;
  /** Threads reading and hashing files (default: the cores, 2 to 4). */
  threads?: number;
  /** Entries in flight between the walk and the output (default 1024): keeps every thread fed. */
  window?: number;
  signal?: AbortSignal;
  /** Paths (relative, with everything below them) left out of the walk. */
  skip?: (path: string) => boolean;
  onStats?: (stats: IndexStats) => void;
}

/**
 * The entries of the tree at `root` in canonical order, regular files hashed on `threads` worker
 * threads (yielded in order). Throws NOT_FOUND when `root` is not a directory; an
 * unreadable file throws its error. Stats are reported through `onStats` when the walk ends.
 */
export async function* walkTree(root: string, options: WalkOptions = {}): AsyncGenerator<IndexEntry> {
  const started = performance.now();
  const rootStats = await lstat(root).catch(() => undefined);
  if (!rootStats?.isDirectory()) {
    throw new DssnapError('NOT_FOUND', `${root} does not exist or is not a directory`, { details: { root } });
  }
  const stats = emptyIndexStats();
  const previous = options.previous ? mergeCursor(options.previous) : undefined;
  const window = options.window ?? 1024;
  const queue: Promise<IndexEntry>[] = [];
  const pool = createHashPool(options.threads ?? defaultHashThreads());

  const describe = async (path: string, info: Stats): Promise<IndexEntry> => {
    const entry = baseEntry(path, info);
    if (entry.t === 'l') entry.l = await readlink(join(root, path));
    if (entry.t !== 'f') return entry;
    stats.files++;
    stats.bytes += info.size;
    if (options.hash === false) return entry;
    const old = previous ? await previous.find(path) : undefined;
    if (
      old?.t === 'f' &&
      old.h !== undefined &&
      old.i === entry.i &&
      old.s === entry.s &&
      old.mt === entry.mt
    ) {
      stats.reusedFiles++;
      entry.h = old.h;
      return entry;
    }
    const read = await pool.hash(join(root, path), info.size);
    entry.h = read.hash;
    stats.hashedFiles++;
    stats.hashedBytes += read.bytes;
    return entry;
  };

  // Depth first, names sorted: a stack of directories still to list.
  // Wrapped: an async generator would await a bare promise it yields, and hashing would not overlap.
  const walk = async function* (path: string, info: Stats): AsyncGenerator<{ entry: Promise<IndexEntry> }> {
    yield { entry: describe(path, info) };
    if (!info.isDirectory()) return;
    const dir = path === '.' ? root : join(root, path);
    const children = readdirSync(dir)
      .sort(compareNames)
      .map((name) => (path === '.' ? name : `${path}/${name}`))
      .filter((child) => !options.skip?.(child));
    // Metadata calls are synchronous on purpose: a few microseconds each, where a round trip through
    // the thread pool costs ten times that; file contents are still read asynchronously, overlapped.
    for (const child of children) yield* walk(child, lstatSync(join(root, child)));
  };

  let walked = 0;
  try {
    for await (const { entry: pending } of walk('.', rootStats)) {
      if (options.signal?.aborted) throw interrupted(root);
      // Settled later, in order; until then a failure must not count as an unhandled rejection.
      pending.catch(() => undefined);
      queue.push(pending);
      // The walk runs on resolved promises only: let the workers' replies in now and then, or a
      // worker done with its batch waits for the next one until the window is full.
      if (++walked % 128 === 0) await new Promise(setImmediate);
      if (queue.length >= window) {
        stats.entries++;
        yield await queue.shift()!;
      }
    }
    while (queue.length > 0) {
      if (options.signal?.aborted) throw interrupted(root);
      stats.entries++;
      yield await queue.shift()!;
    }
  } finally {
    await pool.close();
  }
  stats.durationMs = Math.round(performance.now() - started);
  options.onStats?.(stats);
}

/**
 * The entries of the archive at `path`, in archive order (canonical for archives written with
 * `--sort=name`), regular files hashed from the archive's own content. Hard-link members carry `hl`.
 * Throws BACKUP_INVALID for a damaged archive.
 */
export async function* walkArchive(
  archive: string,
  options: { signal?: AbortSignal; onStats?: (stats: IndexStats) => void } = {},
): AsyncGenerator<IndexEntry> {
  const started = performance.now();
  const stats = emptyIndexStats();
  // The reader pushes, the generator pulls: a bounded hand-over keeps memory constant.
  const channel = createChannel<IndexEntry>();
  const controller = new AbortController();
  const forward = (): void => controller.abort();
  options.signal?.addEventListener('abort', forward, { once: true });
  const reading = readTarArchive(
    archive,
    async (member, data) => {
      const entry: IndexEntry = {
        p: member.path,
        t:
          member.type === 'file' || member.type === 'hardlink'
            ? 'f'
            : member.type === 'directory'
              ? 'd'
              : member.type === 'symlink'
                ? 'l'
                : 'o',
        m: member.mode,
        u: member.uid,
        g: member.gid,
        mt: member.mtime,
      };
      if (member.type === 'symlink') entry.l = member.linkTarget ?? '';
      if (member.type === 'hardlink') entry.hl = member.linkTarget ?? '';
      if (member.type === 'file') {
        const hash = createHash('sha256');
        let size = 0;
        for await (const chunk of data) {
          hash.update(chunk);
          size += chunk.length;
        }
        entry.s = size;
        entry.h = hash.digest('hex');
        stats.files++;
        stats.hashedFiles++;
        stats.bytes += size;
        stats.hashedBytes += size;
      }
      stats.entries++;
      await channel.put(entry);
    },
    { signal: controller.signal },
  ).then(
    () => channel.close(),
    (error: unknown) => channel.fail(error),
  );
  let complete = false;
  try {
    yield* channel.take();
    complete = true;
  } finally {
    // A consumer that stops early (an error downstream) must not leave the reader blocked.
    if (!complete) {
      controller.abort();
      channel.release();
    }
    await reading;
    options.signal?.removeEventListener('abort', forward);
  }
  if (options.signal?.aborted) throw interrupted(archive);
  stats.durationMs = Math.round(performance.now() - started);
  options.onStats?.(stats);
}

/**
 * Write `entries` as an index file at `path` (gzip'd JSON lines after a header line), atomically: a
 * temporary file renamed when complete. Returns the number of entries written.
 */
export async function writeIndex(path: string, entries: AsyncIterable<IndexEntry>): Promise<number> {
  const temporary = `${path}.partial`;
  let count = 0;
  const lines = async function* (): AsyncGenerator<string> {
    yield `${JSON.stringify(indexFormat)}\n`;
    let batch = '';
    for await (const entry of entries) {
      batch += `${JSON.stringify(entry)}\n`;
      count++;
      if (batch.length > 64 * 1024) {
        yield batch;
        batch = '';
      }
    }
    if (batch) yield batch;
  };
  try {
    // Level 1: a third of level 6's CPU for an index ~10 % larger.
    await pipeline(lines, createGzip({ level: 1 }), createWriteStream(temporary, { mode: 0o644 }));
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return count;
}

/**
 * The entries of an index file, in order. Throws NOT_FOUND when it does not exist, BACKUP_INVALID when
 * it is not an index (or is damaged).
 */
export async function* readIndex(path: string): AsyncGenerator<IndexEntry> {
  const input = createReadStream(path);
  const opened = new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve());
    input.once('error', reject);
  });
  try {
    await opened;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DssnapError('NOT_FOUND', `The file index ${path} does not exist`, { details: { path } });
    }
    throw error;
  }
  const gunzip = createGunzip();
  input.on('error', (error) => gunzip.destroy(error));
  const decoder = new StringDecoder('utf8');
  let first = true;
  let rest = '';
  const parse = (line: string): IndexEntry | undefined => {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw badIndex(path, 'a line is not JSON', error);
    }
    if (!first) return value as IndexEntry;
    first = false;
    if ((value as { format?: string }).format !== indexFormat.format) throw badIndex(path, 'no index header');
    return undefined;
  };
  try {
    for await (const chunk of input.pipe(gunzip)) {
      const lines = (rest + decoder.write(chunk as Buffer)).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        if (line === '') continue;
        const entry = parse(line);
        if (entry) yield entry;
      }
    }
    rest += decoder.end();
    if (rest !== '') {
      const entry = parse(rest);
      if (entry) yield entry;
    }
  } catch (error) {
    if (error instanceof DssnapError) throw error;
    throw badIndex(path, (error as Error).message, error);
  } finally {
    input.destroy();
    gunzip.destroy();
  }
  if (first) throw badIndex(path, 'it is empty');
}

export type ChangeKind = 'type' | 'content' | 'size' | 'mode' | 'owner' | 'link-target';

export interface TreeDifferences {
  missing: string[];
  extra: string[];
  changed: { path: string; kinds: ChangeKind[] }[];
  /** Totals (the lists above stop at `limit` items each). */
  counts: { missing: number; extra: number; changed: number; checked: number };
}

/**
 * Compare the expected entries (an index) with the actual ones (a walk), both in canonical order.
 * `missing`: in the index only; `extra`: in the walk only; `changed`: different type, content, mode,
 * owner or symlink target (mtime is not compared). Lists stop at `limit` (default 100) items each.
 */
export async function compareEntries(
  expected: AsyncIterable<IndexEntry>,
  actual: AsyncIterable<IndexEntry>,
  options: { limit?: number } = {},
): Promise<TreeDifferences> {
  const limit = options.limit ?? 100;
  const result: TreeDifferences = {
    missing: [],
    extra: [],
    changed: [],
    counts: { missing: 0, extra: 0, changed: 0, checked: 0 },
  };
  const left = expected[Symbol.asyncIterator]();
  const right = actual[Symbol.asyncIterator]();
  try {
    await mergeEntries(left, right, result, limit);
  } finally {
    // A damaged side throws: end the other one too (a tree walk stops its hashing threads).
    await Promise.allSettled([left.return?.(), right.return?.()]);
  }
  return result;
}

async function mergeEntries(
  left: AsyncIterator<IndexEntry>,
  right: AsyncIterator<IndexEntry>,
  result: TreeDifferences,
  limit: number,
): Promise<void> {
  let a = await left.next();
  let b = await right.next();
  while (!a.done || !b.done) {
    const order = a.done ? 1 : b.done ? -1 : comparePaths(a.value.p, b.value.p);
    if (order < 0) {
      result.counts.missing++;
      if (result.missing.length < limit) result.missing.push(a.value!.p);
      a = await left.next();
    } else if (order > 0) {
      result.counts.extra++;
      if (result.extra.length < limit) result.extra.push(b.value!.p);
      b = await right.next();
    } else {
      result.counts.checked++;
      const kinds = entryChanges(a.value!, b.value!);
      if (kinds.length > 0) {
        result.counts.changed++;
        if (result.changed.length < limit) result.changed.push({ path: a.value!.p, kinds });
      }
      a = await left.next();
      b = await right.next();
    }
  }
}

/** How two entries of the same path differ. Hard-link members are checked through their target. */
export function entryChanges(expected: IndexEntry, actual: IndexEntry): ChangeKind[] {
  const kinds: ChangeKind[] = [];
  if (expected.t !== actual.t) return ['type'];
  if (expected.t === 'f' && expected.hl === undefined && actual.hl === undefined) {
    if (expected.s !== actual.s) kinds.push('size');
    else if (expected.h !== undefined && actual.h !== undefined && expected.h !== actual.h)
      kinds.push('content');
  }
  if (expected.m !== actual.m) kinds.push('mode');
  if (expected.u !== actual.u || expected.g !== actual.g) kinds.push('owner');
  if (expected.t === 'l' && expected.l !== actual.l) kinds.push('link-target');
  return kinds;
}

/** True when nothing is missing, extra or changed. */
export function isClean(differences: TreeDifferences): boolean {
  const { missing, extra, changed } = differences.counts;
  return missing + extra + changed === 0;
}

function baseEntry(path: string, info: Stats): IndexEntry {
  const t: EntryType = info.isFile() ? 'f' : info.isDirectory() ? 'd' : info.isSymbolicLink() ? 'l' : 'o';
  return {
    p: path,
    t,
    m: info.mode & 0o7777,
    u: info.uid,
    g: info.gid,
    ...(t === 'f' ? { s: info.size, i: info.ino } : {}),
    mt: Math.floor(info.mtimeMs / 1000),
  };
}

/** A forward-only cursor over sorted entries: `find(path)` for paths asked in increasing order. */
function mergeCursor(entries: AsyncIterable<IndexEntry>): {
  find(path: string): Promise<IndexEntry | undefined>;
} {
  const iterator = entries[Symbol.asyncIterator]();
  let current: IteratorResult<IndexEntry> | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  const find = async (path: string): Promise<IndexEntry | undefined> => {
    current ??= await iterator.next();
    while (!current.done && comparePaths(current.value.p, path) < 0) current = await iterator.next();
    return !current.done && current.value.p === path ? current.value : undefined;
  };
  return {
    // Lookups start concurrently (hashing runs ahead): serialise them in call order.
    find(path) {
      const result = chain.then(() => find(path));
      chain = result.catch(() => undefined);
      return result;
    },
  };
}

/** A one-slot hand-over between a pushing producer and a pulling consumer. */
function createChannel<T>(): {
  put(value: T): Promise<void>;
  close(): void;
  fail(error: unknown): void;
  /** The consumer is gone: never block the producer again. */
  release(): void;
  take(): AsyncGenerator<T>;
} {
  let released = false;
  const items: T[] = [];
  let closed = false;
  let failure: { error: unknown } | undefined;
  let wakeConsumer: (() => void) | undefined;
  let wakeProducer: (() => void) | undefined;
  const notify = (): void => {
    wakeConsumer?.();
    wakeConsumer = undefined;
  };
  return {
    async put(value) {
      items.push(value);
      notify();
      if (released) {
        items.length = 0;
        return;
      }
      if (items.length >= 64) await new Promise<void>((resolve) => (wakeProducer = resolve));
    },
    release() {
      released = true;
      items.length = 0;
      wakeProducer?.();
      wakeProducer = undefined;
    },
    close() {
      closed = true;
      notify();
    },
    fail(error) {
      failure = { error };
      notify();
    },
    async *take() {
      for (;;) {
        if (items.length > 0) {
          const value = items.shift()!;
          if (items.length < 32) {
            wakeProducer?.();
            wakeProducer = undefined;
          }
          yield value;
          continue;
        }
        if (failure) throw failure.error;
        if (closed) return;
        await new Promise<void>((resolve) => (wakeConsumer = resolve));
      }
    },
  };
}

function interrupted(root: string): DssnapError {
  return new DssnapError('INTERRUPTED', `Hashing ${root} was interrupted`, { details: { root } });
}

function badIndex(path: string, problem: string, cause?: unknown): DssnapError {
  return new DssnapError('BACKUP_INVALID', `The file index ${path} cannot be read: ${problem}`, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'The catalog entry of this backup is damaged; verify can still check the copy against another index.',
    details: { path },
  });
}
