import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DssnapError } from '../errors.js';
import {
  archivedJournalsKept,
  archiveJournal,
  createRunId,
  type JournalEntry,
  journalPath,
  leftoverJournals,
  openJournal,
  pendingSteps,
  readJournal,
  reopenJournal,
} from './journal.js';
import { startChild } from './test-support/spawn-child.js';
import { type ChildTree, transpileForChild } from './test-support/transpile.js';

let stateDir: string;

beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'dssnap-journal-'));
});

afterEach(() => {
  rmSync(stateDir, { recursive: true, force: true });
});

function begin(step: number, undoable = true): JournalEntry {
  return { type: 'step-begin', step, kind: 'marker', title: `Step ${step}`, intent: { step }, undoable };
}

function done(step: number): JournalEntry {
  return { type: 'step-done', step, kind: 'marker', record: { id: `r${step}` } };
}

describe('openJournal / append / readJournal', () => {
  it('writes a run-start record with the meta and this process, then the appended records in order', () => {
    const journal = openJournal(stateDir, 'run-1', { command: 'backup' });

    journal.append(begin(1));
    journal.append(done(1));
    journal.close();

    const records = readJournal(join(stateDir, 'journal', 'run-1.jsonl'));
    expect(records.map((record) => [record.seq, record.type])).toEqual([
      [1, 'run-start'],
      [2, 'step-begin'],
      [3, 'step-done'],
    ]);
    expect(records[0]).toMatchObject({ runId: 'run-1', meta: { command: 'backup' }, pid: process.pid });
  });

  it('refuses a second journal for the same run id', () => {
    openJournal(stateDir, 'run-1', null).close();

    const open = () => openJournal(stateDir, 'run-1', null);

    expect(open).toThrow(/A journal for run run-1 already exists/);
  });

  it.each(['../escape', 'a b', '', '.hidden'])('refuses the run id %j', (runId) => {
    const open = () => openJournal(stateDir, runId, null);

    expect(open).toThrow(DssnapError);
    expect(open).toThrow(/Invalid run id/);
  });

  it('creates sortable run ids', () => {
    const id = createRunId(new Date('2025-03-04T05:06:07.890Z'));

    expect(id).toMatch(/^20250304T050607Z-[0-9a-f]{6}$/);
    expect(journalPath(stateDir, id)).toBe(join(stateDir, 'journal', `${id}.jsonl`));
  });

  it('ignores a torn last line (a write cut by a crash)', () => {
    const journal = openJournal(stateDir, 'run-1', null);
    journal.append(begin(1));
    journal.close();

    appendFileSync(journal.path, '{"ts":"2025-01-01","runId":"run-1","seq":3,"type":"step-do');

    expect(readJournal(journal.path).map((record) => record.type)).toEqual(['run-start', 'step-begin']);
  });

  it('reports a damaged line in the middle with its line number', () => {
    const journal = openJournal(stateDir, 'run-1', null);
    journal.close();
    appendFileSync(journal.path, 'garbage\n{"seq":3}\n');

    const read = () => readJournal(journal.path);

    expect(read).toThrow(/damaged at line 2/);
  });

  it('reports a missing journal as NOT_FOUND', () => {
    const read = () => readJournal(join(stateDir, 'journal', 'nope.jsonl'));

    expect(read).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
  });

  it('reopens a journal past a torn tail and continues the sequence', () => {
    const first = openJournal(stateDir, 'run-1', null);
    first.append(begin(1));
    first.close();
    appendFileSync(first.path, '{"torn":');

    const reopened = reopenJournal(first.path);
    reopened.append(done(1));
    reopened.close();

    const text = readFileSync(first.path, 'utf8');
    expect(text).not.toContain('torn');
    expect(readJournal(first.path).map((record) => record.seq)).toEqual([1, 2, 3]);
  });
});

describe('pendingSteps', () => {
  it('lists begun undoable steps not undone or dropped, newest first, begin-only ones included', () => {
    const journal = openJournal(stateDir, 'run-1', null);
    for (const entry of [
      begin(1),
      done(1),
      begin(2),
      done(2),
      { type: 'undo-begin', step: 2, kind: 'marker', by: 'run' },
      { type: 'undo-done', step: 2, kind: 'marker' },
      begin(3, false),
      done(3),
      begin(4),
      done(4),
      { type: 'undo-dropped', step: 4, kind: 'marker' },
      begin(5),
      done(5),
      { type: 'undo-failed', step: 5, kind: 'marker', error: 'busy' },
      begin(6),
    ] satisfies JournalEntry[]) {
      journal.append(entry);
    }
    journal.close();

    const pending = pendingSteps(readJournal(journal.path));

    expect(pending).toEqual([
      { step: 6, kind: 'marker', title: 'Step 6', intent: { step: 6 }, record: undefined, done: false },
      { step: 5, kind: 'marker', title: 'Step 5', intent: { step: 5 }, record: { id: 'r5' }, done: true },
      { step: 1, kind: 'marker', title: 'Step 1', intent: { step: 1 }, record: { id: 'r1' }, done: true },
    ]);
  });
});

describe('leftoverJournals', () => {
  it.each<{ name: string; entries: JournalEntry[]; expected: boolean }>([
    { name: 'no run-end (killed)', entries: [begin(1), done(1)], expected: true },
    {
      name: 'ended completed',
      entries: [begin(1, false), done(1), { type: 'run-end', phase: 'completed' }],
      expected: false,
    },
    {
      name: 'ended with its undo done',
      entries: [
        begin(1),
        { type: 'undo-begin', step: 1, kind: 'marker', by: 'run' },
        { type: 'undo-done', step: 1, kind: 'marker' },
        { type: 'run-end', phase: 'failed' },
      ],
      expected: false,
    },
    {
      name: 'ended failed with an undo that failed',
      entries: [
        begin(1),
        done(1),
        { type: 'undo-failed', step: 1, kind: 'marker', error: 'busy' },
        { type: 'run-end', phase: 'failed' },
      ],
      expected: true,
    },
  ])('$name → leftover: $expected', ({ entries, expected }) => {
    const journal = openJournal(stateDir, 'run-1', null);
    for (const entry of entries) journal.append(entry);
    journal.close();

    const leftovers = leftoverJournals(stateDir);

    expect(leftovers).toEqual(expected ? [journal.path] : []);
  });

  it('lists a damaged journal so that recovery reports the damage', () => {
    const journal = openJournal(stateDir, 'run-1', null);
    journal.close();
    appendFileSync(journal.path, 'garbage\n{}\n');

    expect(leftoverJournals(stateDir)).toEqual([journal.path]);
  });

  it('is empty when no journal was ever written', () => {
    expect(leftoverJournals(join(stateDir, 'never-used'))).toEqual([]);
  });
});

describe('archiveJournal', () => {
  it('moves the journal to journal/done/ and is idempotent', () => {
    const journal = openJournal(stateDir, 'run-1', null);
    journal.close();

    const first = archiveJournal(journal.path);
    const second = archiveJournal(journal.path);

    expect(first).toBe(join(stateDir, 'journal', 'done', 'run-1.jsonl'));
    expect(second).toBe(first);
    expect(existsSync(journal.path)).toBe(false);
    expect(readJournal(first)[0]).toMatchObject({ type: 'run-start', runId: 'run-1' });
  });

  it(`keeps only the newest ${archivedJournalsKept} archived journals`, () => {
    const doneDir = join(stateDir, 'journal', 'done');
    for (let index = 0; index < archivedJournalsKept + 4; index++) {
      const journal = openJournal(stateDir, `run-${String(index).padStart(3, '0')}`, null);
      journal.close();
      const archived = archiveJournal(journal.path);
      const seconds = 1_700_000_000 + index;
      utimesSync(archived, seconds, seconds);
    }

    const names = readdirSync(doneDir).sort();

    expect(names).toHaveLength(archivedJournalsKept);
    expect(names[0]).toBe('run-004.jsonl');
    expect(names.at(-1)).toBe(`run-0${archivedJournalsKept + 3}.jsonl`);
  });
});

describe('a journal written by a process that is then SIGKILLed', () => {
  let tree: ChildTree;

  beforeAll(() => {
    tree = transpileForChild();
  });

  afterAll(() => {
    tree.remove();
  });

  it('holds every record appended before the kill', async () => {
    const child = startChild(tree.childScript, ['journal', stateDir, 'killed-run', '5']);

    const exit = await child.exited;

    expect(exit.signal).toBe('SIGKILL');
    const records = readJournal(journalPath(stateDir, 'killed-run'));
    expect(records).toHaveLength(11);
    expect(records.at(-1)).toMatchObject({ type: 'step-done', step: 5, record: { step: 5 }, seq: 11 });
    expect(records[0]).toMatchObject({ type: 'run-start', pid: child.pid });
    expect(leftoverJournals(stateDir)).toEqual([journalPath(stateDir, 'killed-run')]);
  });
});
