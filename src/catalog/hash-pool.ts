/**
 * Reads and hashes files on a few worker threads. Reading file after file on the main thread made the
 * hash step of a first backup bounded by the disk's latency (one read in flight: a cold 1M-file
 * DATA_DIR on a cloud disk took over half an hour); here several reads are in flight and the sha256
 * work is spread over the cores, while the main thread walks the tree and writes the index.
 *
 * Files are handed over in batches (a message per file would cost more than hashing a small one): a
 * batch goes when it is full, or when the caller yields to the event loop; an idle worker then takes
 * whatever has queued up, so batches grow by themselves when the workers are busy.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * The worker, as source: `eval` needs no separate file, so the same code runs from src/ under vitest
 * and from dist/. Synchronous reads on purpose: each worker is its own thread, blocked in one read.
 */
const workerSource = `
const { parentPort } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const buffer = Buffer.allocUnsafe(1024 * 1024);
function hashOne(path) {
  let fd;
  try {
    fd = openSync(path, 'r');
    const hash = createHash('sha256');
    let bytes = 0;
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
      bytes += n;
    }
    return { hash: hash.digest('hex'), bytes };
  } catch (error) {
    return { error: { code: error.code, message: error.message } };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
parentPort.on('message', (paths) => parentPort.postMessage(paths.map(hashOne)));
`;

export interface FileHash {
  /** sha256, hex. */
  hash: string;
  /** Bytes read (the size when it was read). */
  bytes: number;
}

export interface HashPool {
  /** The sha256 of the file at `path`; rejects with the read error (its `code` kept). */
  hash(path: string, size: number): Promise<FileHash>;
  /** Stop the workers; pending hashes reject. Idempotent. */
  close(): Promise<void>;
}

interface Job {
  path: string;
  size: number;
  resolve(value: FileHash): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  jobs: Job[] | undefined;
}

type Reply = { hash: string; bytes: number } | { error: { code?: string; message: string } };

/** Most files per message, and the bytes after which a batch stops growing (a large file goes alone). */
const batchFiles = 64;
const batchBytes = 4 * 1024 * 1024;

/** Default threads: the cores, at least 2 (reads overlap even on one core), at most 4 (memory). */
export function defaultHashThreads(): number {
  return Math.min(4, Math.max(2, availableParallelism()));
}

/** A pool of `threads` workers, started on the first file. */
export function createHashPool(threads = defaultHashThreads()): HashPool {
  const queue: Job[] = [];
  const slots: Slot[] = [];
  let closed = false;
  let flushing = false;
  /** Bytes of the files in `queue`. */
  let queuedBytes = 0;

  const fail = (jobs: readonly Job[], error: Error): void => {
    for (const job of jobs) job.reject(error);
  };

  const dispatch = (): void => {
    for (const slot of slots) {
      if (queue.length === 0) return;
      if (slot.jobs) continue;
      const jobs: Job[] = [];
      let bytes = 0;
      while (queue.length > 0 && jobs.length < batchFiles && bytes < batchBytes) {
        const job = queue.shift()!;
        jobs.push(job);
        bytes += job.size;
        queuedBytes -= job.size;
      }
      slot.jobs = jobs;
      slot.worker.ref();
      slot.worker.postMessage(jobs.map((job) => job.path));
    }
  };

  const start = (): void => {
    for (let i = 0; i < threads; i++) {
      const slot: Slot = {
        worker: new Worker(workerSource, {
          eval: true,
          // The parent's flags (e.g. --input-type=module) would change how this CommonJS source runs.
          execArgv: [],
          resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 },
        }),
        jobs: undefined,
      };
      slot.worker.on('message', (replies: Reply[]) => {
        const jobs = slot.jobs ?? [];
        slot.jobs = undefined;
        slot.worker.unref();
        jobs.forEach((job, index) => {
          const reply = replies[index]!;
          if ('error' in reply) job.reject(readError(job.path, reply.error));
          else job.resolve(reply);
        });
        dispatch();
      });
      slot.worker.on('error', (error) => {
        // A worker that dies takes the whole pool down: the walk fails with this error.
        closed = true;
        fail(slot.jobs ?? [], error);
        fail(queue.splice(0), error);
        queuedBytes = 0;
      });
      // Only a busy worker keeps the process alive: a walk abandoned without return() cannot hang it.
      // (After the listeners: adding a 'message' listener refs the worker's port again.)
      slot.worker.unref();
      slots.push(slot);
    }
  };

  return {
    hash(path, size) {
      if (closed) return Promise.reject(new Error('The hash pool is closed'));
      if (slots.length === 0) start();
      return new Promise<FileHash>((resolve, reject) => {
        queue.push({ path, size, resolve, reject });
        queuedBytes += size;
        // A full batch goes at once; a partial one when the caller yields to the event loop.
        if (queue.length >= batchFiles || queuedBytes >= batchBytes) dispatch();
        else if (!flushing) {
          flushing = true;
          setImmediate(() => {
            flushing = false;
            dispatch();
          });
        }
      });
    },
    async close() {
      if (closed && slots.length === 0) return;
      closed = true;
      const stopped = new Error('The hash pool was closed');
      fail(queue.splice(0), stopped);
      queuedBytes = 0;
      for (const slot of slots) fail(slot.jobs ?? [], stopped);
      await Promise.all(slots.splice(0).map((slot) => slot.worker.terminate()));
    },
  };
}

/** The worker's read error as a Node error: same message and code as a read on the main thread. */
function readError(path: string, error: { code?: string; message: string }): Error {
  const result = new Error(error.message) as NodeJS.ErrnoException;
  if (error.code !== undefined) result.code = error.code;
  result.path = path;
  return result;
}
