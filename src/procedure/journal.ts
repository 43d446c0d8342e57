/**
 * The crash record of a run: one JSON-lines file per run under `<stateDir>/journal/<runId>.jsonl`.
 * Before a step changes the world its intent is appended, after it what it did; every append is
 * written and fsync'd before it returns, synchronously on purpose, so a SIGKILL right after a step
 * still leaves its record for `dssnap recover`. The state dir must not be on a filesystem dssnap
 * freezes (the caller checks): an fsync there would block until the thaw.
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DssnapError } from '../errors.js';
import { currentProcessIdentity, type ProcessIdentity } from './process-identity.js';

/** A JSON value: what intents and records are made of, so another process can undo from them. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * `planned` → `running` → `completed` | `completed-with-warnings` | `failed` | `undone`.
 * `failed`: a step (or an undo) failed; `undone`: the run was stopped (signal, or recovered by
 * another process) and everything it did was undone.
 */
export type RunPhase = 'planned' | 'running' | 'completed' | 'completed-with-warnings' | 'failed' | 'undone';

/** What a caller appends; the journal adds `ts`, `runId` and `seq`. */
export type JournalEntry =
  | ({ type: 'run-start'; meta: Json } & ProcessIdentity)
  | { type: 'step-begin'; step: number; kind: string; title: string; intent: Json; undoable: boolean }
  | { type: 'step-done'; step: number; kind: string; record: Json }
  | { type: 'step-failed'; step: number; kind: string; error: string }
  | { type: 'undo-begin'; step: number; kind: string; by: 'run' | 'recovery' }
  | { type: 'undo-done'; step: number; kind: string }
  | { type: 'undo-failed'; step: number; kind: string; error: string }
  /** The step's undo was dropped on purpose (a retained snapshot): recovery must leave it alone. */
  | { type: 'undo-dropped'; step: number; kind: string }
  | ({ type: 'recovery-start' } & ProcessIdentity)
  | { type: 'run-end'; phase: RunPhase; recovered?: boolean; error?: string };

export type JournalRecord = JournalEntry & { ts: string; runId: string; seq: number };

export interface Journal {
  readonly path: string;
  readonly runId: string;
  /** Append one record; returns once it is written and fsync'd. Throws after `close()`. */
  append(entry: JournalEntry): JournalRecord;
  /** Close the file. Idempotent. */
  close(): void;
}

/** Journals kept in `journal/done/` after archiving; older ones are deleted. */
export const archivedJournalsKept = 50;

const runIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A new run id, sortable by time: `20250101T093000Z-1a2b3c`. */
export function createRunId(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${Math.random().toString(16).slice(2, 8).padEnd(6, '0')}`;
}

/** Where the journal of `runId` lives (whether or not it exists). */
export function journalPath(stateDir: string, runId: string): string {
  checkRunId(runId);
  return join(stateDir, 'journal', `${runId}.jsonl`);
}

/**
 * Create the journal of a new run and write its `run-start` record (with this process's identity,
 * so recovery can tell a live run from a dead one). Throws if a journal of that run id exists.
 */
export function openJournal(stateDir: string, runId: string, meta: Json): Journal {
  const path = journalPath(stateDir, runId);
  mkdirSync(dirname(path), { recursive: true });
  let fd: number;
  try {
    fd = openSync(path, 'ax', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new DssnapError('INTERNAL', `A journal for run ${runId} already exists: ${path}`, {
        hint: 'Run ids must be unique; let dssnap generate them.',
        cause: error,
      });
    }
    throw error;
  }
  // The new directory entry must survive a crash too, not only the file's content.
  fsyncDirectory(dirname(path));
  const journal = appenderOn(fd, path, runId, 0);
  journal.append({ type: 'run-start', meta, ...currentProcessIdentity() });
  return journal;
}

/**
 * Open an existing journal to append to it (recovery writes into the journal it recovers). A torn
 * last line — the writer died inside a write, before the step it announced started — is cut off.
 */
export function reopenJournal(path: string): Journal {
  const records = readJournal(path);
  const runId = records[0]?.runId ?? basename(path, '.jsonl');
  const fd = openSync(path, 'a+');
  try {
    truncateTornTail(fd);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  const lastSeq = records.length > 0 ? records[records.length - 1]!.seq : 0;
  return appenderOn(fd, path, runId, lastSeq);
}

/**
 * Every complete record of a journal, in order. Tolerates a torn last line (a write cut by a
 * crash); a damaged line anywhere else is an error naming the line.
 */
export function readJournal(path: string): JournalRecord[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DssnapError('NOT_FOUND', `No journal at ${path}`, {
        hint: "'dssnap recover' with no argument lists the runs that left a journal.",
        cause: error,
      });
    }
    throw error;
  }
  const lines = text.split('\n');
  const records: JournalRecord[] = [];
  for (const [index, line] of lines.entries()) {
    if (line.trim() === '') continue;
    const isLast = index === lines.length - 1;
    try {
      records.push(JSON.parse(line) as JournalRecord);
    } catch (error) {
      // Only the last line can be torn, and only when it has no newline after it.
      if (isLast) break;
      throw new DssnapError('INTERNAL', `The journal ${path} is damaged at line ${index + 1}`, {
        hint: 'Inspect the file; the resources of that run may need to be removed by hand or with dssnap cleanup.',
        cause: error,
        details: { path, line: index + 1 },
      });
    }
  }
  return records;
}

/** The last `run-end` record of a journal, or undefined while the run has not ended. */
export function runEnd(
  records: readonly JournalRecord[],
): Extract<JournalRecord, { type: 'run-end' }> | undefined {
  for (let index = records.length - 1; index >= 0; index--) {
    const record = records[index]!;
    if (record.type === 'run-end') return record;
  }
  return undefined;
}

/** A journaled step whose undo has not happened yet, as recovery sees it. */
export interface PendingStep {
  step: number;
  kind: string;
  title: string;
  /** What the step was about to do (journaled before it started). */
  intent: Json;
  /** What it did; undefined when it never finished (`done: false`). */
  record: Json | undefined;
  /** False when the process died (or the step failed) between `step-begin` and `step-done`. */
  done: boolean;
}

/**
 * The undoable steps of a journal that were begun and neither undone nor dropped, newest first: what
 * recovery must undo. An undo that failed or was cut off is still pending (undos are idempotent).
 */
export function pendingSteps(records: readonly JournalRecord[]): PendingStep[] {
  const steps = new Map<number, PendingStep>();
  for (const record of records) {
    if (record.type === 'step-begin' && record.undoable) {
      const { step, kind, title, intent } = record;
      steps.set(step, { step, kind, title, intent, record: undefined, done: false });
    } else if (record.type === 'step-done') {
      const pending = steps.get(record.step);
      if (pending) Object.assign(pending, { done: true, record: record.record });
    } else if (record.type === 'undo-done' || record.type === 'undo-dropped') {
      steps.delete(record.step);
    }
  }
  return [...steps.values()].sort((a, b) => b.step - a.step);
}

/**
 * Journals that need recovery, oldest first: the run did not end (no `run-end`: the process was
 * killed), or it ended with undos still pending (an undo failed). Includes the journals of runs still
 * in progress: see `isRunLive` in recover.ts. A damaged journal is listed too.
 */
export function leftoverJournals(stateDir: string): string[] {
  const dir = join(stateDir, 'journal');
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.endsWith('.jsonl'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return names
    .map((name) => join(dir, name))
    .filter((path) => needsRecovery(path))
    .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs || a.localeCompare(b));
}

/**
 * Move a finished journal to `<stateDir>/journal/done/` and delete all but the newest
 * `archivedJournalsKept` there. Idempotent: a journal already archived returns its archived path.
 */
export function archiveJournal(path: string): string {
  const doneDir = join(dirname(path), 'done');
  const target = join(doneDir, basename(path));
  if (!existsSync(path) && existsSync(target)) return target;
  mkdirSync(doneDir, { recursive: true });
  renameSync(path, target);
  const archived = readdirSync(doneDir)
    .filter((name) => name.endsWith('.jsonl'))
    .map((name) => ({ path: join(doneDir, name), mtimeMs: statSync(join(doneDir, name)).mtimeMs }))
    .sort((a, b) => b.mtimeMs - a.mtimeMs || b.path.localeCompare(a.path));
  for (const old of archived.slice(archivedJournalsKept)) rmSync(old.path, { force: true });
  return target;
}

function needsRecovery(path: string): boolean {
  try {
    const records = readJournal(path);
    return runEnd(records) === undefined || pendingSteps(records).length > 0;
  } catch (error) {
    // A damaged journal is a leftover too: recovering it reports the damage to the user.
    if (error instanceof DssnapError && error.code === 'INTERNAL') return true;
    // Archived by another process since the directory was listed.
    if (error instanceof DssnapError && error.code === 'NOT_FOUND') return false;
    throw error;
  }
}

function appenderOn(fd: number, path: string, runId: string, lastSeq: number): Journal {
  let seq = lastSeq;
  let open = true;
  return {
    path,
    runId,
    append(entry) {
      if (!open) throw new DssnapError('INTERNAL', `The journal ${path} is closed`);
      seq += 1;
      const record = { ts: new Date().toISOString(), runId, seq, ...entry } as JournalRecord;
      writeAll(fd, Buffer.from(`${JSON.stringify(record)}\n`));
      fsyncSync(fd);
      return record;
    },
    close() {
      if (!open) return;
      open = false;
      closeSync(fd);
    },
  };
}

function writeAll(fd: number, buffer: Buffer): void {
  let offset = 0;
  // The file is opened with O_APPEND: each write lands at the end of the file.
  while (offset < buffer.length) offset += writeSync(fd, buffer, offset, buffer.length - offset);
}

function truncateTornTail(fd: number): void {
  const size = fstatSync(fd).size;
  if (size === 0) return;
  const content = Buffer.alloc(size);
  let read = 0;
  while (read < size) {
    const count = readSync(fd, content, read, size - read, read);
    if (count === 0) break;
    read += count;
  }
  if (content[read - 1] === 0x0a) return;
  ftruncateSync(fd, content.lastIndexOf(0x0a, read - 1) + 1);
  fsyncSync(fd);
}

function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function checkRunId(runId: string): void {
  if (!runIdPattern.test(runId)) {
    throw new DssnapError('USAGE', `Invalid run id '${runId}'`, {
      hint: "A run id is 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit.",
      details: { runId },
    });
  }
}
