import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../log.js';
import { type JournalEntry, leftoverJournals, openJournal, readJournal } from './journal.js';
import { acquireLock, listLocks } from './lock.js';
import {
  isRunLive,
  type RecoveryEntry,
  type RecoveryHandlers,
  recoverAll,
  recoverJournal,
} from './recover.js';
import { startChild } from './test-support/spawn-child.js';
import { type ChildTree, transpileForChild } from './test-support/transpile.js';

const log = silentLogger();
let stateDir: string;

beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'dssnap-recover-'));
});

afterEach(() => {
  rmSync(stateDir, { recursive: true, force: true });
});

function writeJournal(runId: string, entries: JournalEntry[]): string {
  const journal = openJournal(stateDir, runId, null);
  for (const entry of entries) journal.append(entry);
  journal.close();
  return journal.path;
}

/** A journal as a process that is gone by now would have left it. */
function writeDeadRunJournal(runId: string, entries: JournalEntry[]): string {
  const path = writeJournal(runId, entries);
  const records = readJournal(path).map((record) =>
    record.type === 'run-start' ? { ...record, pid: spawnSync(process.execPath, ['-e', '0']).pid } : record,
  );
  writeFileSync(path, records.map((record) => `${JSON.stringify(record)}\n`).join(''));
  return path;
}

function begin(step: number, kind: string): JournalEntry {
  return { type: 'step-begin', step, kind, title: `${kind} ${step}`, intent: { step }, undoable: true };
}

function done(step: number, kind: string): JournalEntry {
  return { type: 'step-done', step, kind, record: { id: `${kind}-${step}` } };
}

/** Handlers that record what they were given. */
function recording(kinds: string[], seen: RecoveryEntry[], failing: string[] = []): RecoveryHandlers {
  return Object.fromEntries(
    kinds.map((kind) => [
      kind,
      async (entry: RecoveryEntry) => {
        seen.push(entry);
        if (failing.includes(kind)) throw new Error(`${kind} is busy`);
      },
    ]),
  );
}

describe('recoverJournal', () => {
  it('undoes the pending steps newest first, the begun-but-not-done one included, then archives', async () => {
    const path = writeJournal('dead-run', [
      begin(1, 'freeze'),
      done(1, 'freeze'),
      { type: 'undo-begin', step: 1, kind: 'freeze', by: 'run' },
      { type: 'undo-done', step: 1, kind: 'freeze' },
      begin(2, 'snapshot'),
      done(2, 'snapshot'),
      begin(3, 'expose'),
      done(3, 'expose'),
      begin(4, 'mount'),
    ]);
    const seen: RecoveryEntry[] = [];

    const result = await recoverJournal(
      path,
      recording(['freeze', 'snapshot', 'expose', 'mount'], seen),
      log,
    );

    expect(seen).toEqual([
      { step: 4, kind: 'mount', title: 'mount 4', intent: { step: 4 }, record: undefined, done: false },
      {
        step: 3,
        kind: 'expose',
        title: 'expose 3',
        intent: { step: 3 },
        record: { id: 'expose-3' },
        done: true,
      },
      {
        step: 2,
        kind: 'snapshot',
        title: 'snapshot 2',
        intent: { step: 2 },
        record: { id: 'snapshot-2' },
        done: true,
      },
    ]);
    expect(result).toMatchObject({ runId: 'dead-run', undone: ['mount', 'expose', 'snapshot'], failed: [] });
    expect(result.archivedTo).toBe(join(stateDir, 'journal', 'done', 'dead-run.jsonl'));
    expect(existsSync(path)).toBe(false);
    const records = readJournal(result.archivedTo!);
    expect(records.filter((r) => r.type === 'undo-done').map((r) => ('step' in r ? r.step : 0))).toEqual([
      1, 4, 3, 2,
    ]);
    expect(records.at(-1)).toMatchObject({ type: 'run-end', phase: 'undone', recovered: true });
    expect(leftoverJournals(stateDir)).toEqual([]);
  });

  it('records a kind without handler as a failure, still undoes the others, and keeps the journal', async () => {
    const path = writeJournal('dead-run', [begin(1, 'snapshot'), done(1, 'snapshot'), begin(2, 'mystery')]);
    const seen: RecoveryEntry[] = [];

    const result = await recoverJournal(path, recording(['snapshot'], seen), log);

    expect(result.undone).toEqual(['snapshot']);
    expect(result.failed).toEqual([
      {
        step: 2,
        kind: 'mystery',
        error: `No recovery handler for step kind 'mystery' ("mystery 2"): undo it by hand`,
      },
    ]);
    expect(result.archivedTo).toBeUndefined();
    expect(leftoverJournals(stateDir)).toEqual([path]);
  });

  it('keeps a failed handler pending: the next recovery retries only that one', async () => {
    const path = writeJournal('dead-run', [
      begin(1, 'snapshot'),
      done(1, 'snapshot'),
      begin(2, 'mount'),
      done(2, 'mount'),
    ]);
    const firstSeen: RecoveryEntry[] = [];
    const secondSeen: RecoveryEntry[] = [];

    const first = await recoverJournal(path, recording(['snapshot', 'mount'], firstSeen, ['mount']), log);
    const second = await recoverJournal(path, recording(['snapshot', 'mount'], secondSeen), log);

    expect(first.failed).toEqual([{ step: 2, kind: 'mount', error: 'mount is busy' }]);
    expect(first.undone).toEqual(['snapshot']);
    expect(second.undone).toEqual(['mount']);
    expect(secondSeen.map((entry) => entry.step)).toEqual([2]);
    expect(second.archivedTo).toBeDefined();
  });

  it('does not call a handler for steps dropped on purpose or without undo', async () => {
    const path = writeJournal('dead-run', [
      begin(1, 'snapshot'),
      done(1, 'snapshot'),
      { type: 'undo-dropped', step: 1, kind: 'snapshot' },
      { type: 'step-begin', step: 2, kind: 'catalog', title: 'Write catalog', intent: null, undoable: false },
    ]);
    const seen: RecoveryEntry[] = [];

    const result = await recoverJournal(path, recording(['snapshot'], seen), log);

    expect(seen).toEqual([]);
    expect(result).toMatchObject({ undone: [], failed: [] });
    expect(result.archivedTo).toBeDefined();
  });
});

describe('recoverAll', () => {
  it("recovers the journals of dead runs and skips the current process's own run", async () => {
    const dead = writeDeadRunJournal('dead-run', [begin(1, 'snapshot')]);
    const own = writeJournal('own-run', [begin(1, 'snapshot')]);
    const seen: RecoveryEntry[] = [];

    const result = await recoverAll(stateDir, recording(['snapshot'], seen), log);

    expect(result.recovered.map((r) => [r.path, r.undone])).toEqual([[dead, ['snapshot']]]);
    expect(result.skipped).toEqual([{ path: own, runId: 'own-run' }]);
    expect(leftoverJournals(stateDir)).toEqual([own]);
  });

  it('skips the journal of a run whose lock is held by a live process', async () => {
    const dataDir = join(stateDir, 'data');
    mkdirSync(dataDir);
    const { lock } = acquireLock(stateDir, dataDir, 'live-run');
    const path = writeDeadRunJournal('live-run', [begin(1, 'snapshot')]);
    const seen: RecoveryEntry[] = [];

    const result = await recoverAll(stateDir, recording(['snapshot'], seen), log);

    expect(result.skipped).toEqual([{ path, runId: 'live-run' }]);
    expect(result.recovered).toEqual([]);
    expect(seen).toEqual([]);
    expect(isRunLive(stateDir, path)).toBe(true);
    lock.release();
  });

  it('reports a damaged journal and still recovers the others', async () => {
    const damaged = writeJournal('damaged-run', []);
    appendFileSync(damaged, 'garbage\n{}\n');
    const dead = writeDeadRunJournal('dead-run', [begin(1, 'snapshot')]);
    const seen: RecoveryEntry[] = [];

    const result = await recoverAll(stateDir, recording(['snapshot'], seen), log);

    expect(result.recovered).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: damaged, failed: [expect.objectContaining({ kind: 'journal' })] }),
        expect.objectContaining({ path: dead, undone: ['snapshot'], failed: [] }),
      ]),
    );
  });
});

describe('a procedure SIGKILLed mid-step, recovered by another process', () => {
  let tree: ChildTree;

  beforeAll(() => {
    tree = transpileForChild();
  });

  afterAll(() => {
    tree.remove();
  });

  it('undoes everything the dead run did, newest first, and frees its lock', async () => {
    const world = join(stateDir, 'world');
    mkdirSync(world);
    const child = startChild(tree.childScript, ['procedure', stateDir, world, 'killed-run', 'sigkill']);
    const exit = await child.exited;
    const markersBefore = ['a', 'b', 'c', 'd'].filter((name) => existsSync(join(world, name)));
    const seen: RecoveryEntry[] = [];
    const handlers: RecoveryHandlers = {
      marker: async (entry) => {
        seen.push(entry);
        rmSync((entry.intent as { path: string }).path, { force: true });
      },
    };

    const result = await recoverAll(stateDir, handlers, log);

    expect(exit.signal).toBe('SIGKILL');
    expect(markersBefore).toEqual(['a', 'b', 'c', 'd']);
    expect(seen.map((entry) => [(entry.intent as { path: string }).path.slice(-1), entry.done])).toEqual([
      ['d', false],
      ['c', true],
      ['b', true],
      ['a', true],
    ]);
    expect(['a', 'b', 'c', 'd', 'e'].filter((name) => existsSync(join(world, name)))).toEqual([]);
    expect(existsSync(join(world, 'undo.log'))).toBe(false);
    expect(result.recovered).toEqual([
      expect.objectContaining({
        runId: 'killed-run',
        undone: ['marker', 'marker', 'marker', 'marker'],
        failed: [],
      }),
    ]);
    expect(listLocks(stateDir)).toEqual([]);
    expect(leftoverJournals(stateDir)).toEqual([]);
    expect(readFileSync(join(stateDir, 'journal', 'done', 'killed-run.jsonl'), 'utf8')).toContain(
      '"recovery-start"',
    );
    const next = acquireLock(stateDir, world, 'next-run');
    expect(next.staleRunId).toBeUndefined();
    next.lock.release();
  });
});
