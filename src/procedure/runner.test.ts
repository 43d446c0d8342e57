import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DssnapError, ExitCode } from '../errors.js';
import { silentLogger } from '../log.js';
import {
  type Journal,
  journalPath,
  leftoverJournals,
  openJournal,
  pendingSteps,
  readJournal,
} from './journal.js';
import { listLocks } from './lock.js';
import { createRunner, installSignalHandlers, type Runner, runProcedure, type StepSpec } from './runner.js';
import { startChild } from './test-support/spawn-child.js';
import { type ChildTree, transpileForChild } from './test-support/transpile.js';

const log = silentLogger();
let stateDir: string;
let journal: Journal;
let events: string[];

beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'dssnap-runner-'));
  journal = openJournal(stateDir, 'run-1', { test: true });
  events = [];
});

afterEach(() => {
  journal.close();
  rmSync(stateDir, { recursive: true, force: true });
});

function newRunner(): Runner {
  return createRunner({ runId: 'run-1', journal, log });
}

/** A step that "creates" `name` (an event) and whose undo records what it was given. */
function marker(name: string, options: { fail?: boolean; failUndo?: boolean } = {}): StepSpec<string> {
  return {
    kind: `make-${name}`,
    title: `Make ${name}`,
    intent: { name },
    run: async () => {
      events.push(`do ${name}`);
      if (options.fail) throw new DssnapError('COMMAND_FAILED', `${name} failed`);
      return `${name}-id`;
    },
    record: (id) => ({ id }),
    undo: async (result) => {
      events.push(`undo ${name} (${result ?? 'no result'})`);
      if (options.failUndo) throw new Error(`cannot undo ${name}`);
    },
  };
}

function journalTypes(): string[] {
  return readJournal(journal.path).map((record) =>
    'step' in record ? `${record.type} ${record.step}` : record.type,
  );
}

describe('undo on failure', () => {
  it('undoes the steps in reverse order, the failed step first with no result', async () => {
    const runner = newRunner();

    const summary = await runProcedure(runner, async () => {
      await runner.step(marker('a'));
      await runner.step(marker('b'));
      await runner.step(marker('c', { fail: true }));
      await runner.step(marker('d'));
    });

    expect(events).toEqual(['do a', 'do b', 'do c', 'undo c (no result)', 'undo b (b-id)', 'undo a (a-id)']);
    expect(summary.phase).toBe('failed');
    expect(summary.exitCode).toBe(ExitCode.failed);
    expect((summary.error as Error).message).toBe('c failed');
    expect(journalTypes()).toEqual([
      'run-start',
      'step-begin 1',
      'step-done 1',
      'step-begin 2',
      'step-done 2',
      'step-begin 3',
      'step-failed 3',
      'undo-begin 3',
      'undo-done 3',
      'undo-begin 2',
      'undo-done 2',
      'undo-begin 1',
      'undo-done 1',
      'run-end',
    ]);
  });

  it('runs the other undos when one throws, and returns and journals the failure', async () => {
    const runner = newRunner();

    const summary = await runProcedure(runner, async () => {
      await runner.step(marker('a'));
      await runner.step(marker('b', { failUndo: true }));
      await runner.step(marker('c', { fail: true }));
    });

    expect(events).toEqual(['do a', 'do b', 'do c', 'undo c (no result)', 'undo b (b-id)', 'undo a (a-id)']);
    expect(summary.phase).toBe('failed');
    expect(summary.undoFailures).toEqual([
      expect.objectContaining({ step: 2, kind: 'make-b', title: 'Make b', message: 'cannot undo b' }),
    ]);
    expect(readJournal(journal.path)).toContainEqual(
      expect.objectContaining({ type: 'undo-failed', step: 2, error: 'cannot undo b' }),
    );
    // The journal stays a leftover: `dssnap recover` will retry what could not be undone.
    expect(leftoverJournals(stateDir)).toEqual([journal.path]);
  });

  it('undoAll returns the failures and is shared by concurrent callers', async () => {
    const runner = newRunner();
    await runner.step(marker('a', { failUndo: true }));
    await runner.step(marker('b'));

    const [first, second] = await Promise.all([runner.undoAll('test'), runner.undoAll(new Error('again'))]);

    expect(first).toBe(second);
    expect(first.map((failure) => failure.kind)).toEqual(['make-a']);
    expect(events).toEqual(['do a', 'do b', 'undo b (b-id)', 'undo a (a-id)']);
    await expect(runner.step(marker('c'))).rejects.toThrow(/being undone/);
  });
});

describe('phases and exit codes', () => {
  it('is planned before the first step and running during it', async () => {
    const runner = newRunner();
    const before = runner.phase;
    let during: string | undefined;

    await runner.step({ kind: 'look', title: 'Look', run: async () => (during = runner.phase) });

    expect(before).toBe('planned');
    expect(during).toBe('running');
  });

  it.each<{ name: string; body: (runner: Runner) => Promise<void>; phase: string; exitCode: number }>([
    {
      name: 'all steps succeed',
      body: async (r) => {
        await r.step(marker('a'));
        await r.undoNow('make-a');
      },
      phase: 'completed',
      exitCode: ExitCode.ok,
    },
    {
      name: 'a warning was added',
      body: async (r) => r.addWarning('rsync: some files vanished', { count: 3 }),
      phase: 'completed-with-warnings',
      exitCode: ExitCode.completedWithWarnings,
    },
    {
      name: 'a step failed',
      body: async (r) => void (await r.step(marker('a', { fail: true }))),
      phase: 'failed',
      exitCode: ExitCode.failed,
    },
    {
      name: 'the run was interrupted',
      body: async (r) => {
        r.abort('SIGINT');
        await r.step(marker('a'));
      },
      phase: 'undone',
      exitCode: ExitCode.interrupted,
    },
  ])('$name → $phase, exit code $exitCode', async ({ body, phase, exitCode }) => {
    const runner = newRunner();

    const summary = await runProcedure(runner, body);

    expect(summary.phase).toBe(phase);
    expect(summary.exitCode).toBe(exitCode);
    expect(runner.phase).toBe(phase);
    expect(readJournal(journal.path).at(-1)).toMatchObject({ type: 'run-end', phase });
  });

  it('keeps the warnings in the summary', async () => {
    const runner = newRunner();

    const summary = await runProcedure(runner, async (r) =>
      r.addWarning('rsync: some files vanished', { count: 3 }),
    );

    expect(summary.warnings).toEqual([{ message: 'rsync: some files vanished', details: { count: 3 } }]);
  });

  it('treats a procedure that ends with undos still pending as a bug: fails and undoes them', async () => {
    const runner = newRunner();

    const summary = await runProcedure(runner, async (r) => {
      await r.step(marker('a'));
      return 'done';
    });

    expect(summary.phase).toBe('failed');
    expect((summary.error as DssnapError).code).toBe('INTERNAL');
    expect((summary.error as DssnapError).message).toContain('undos still pending: make-a');
    expect(events).toEqual(['do a', 'undo a (a-id)']);
  });

  it('counts a run undone by undoAll as failed even when finish gets no error', async () => {
    const runner = newRunner();
    await runner.step(marker('a'));
    await runner.undoAll(new DssnapError('COPY_FAILED', 'rsync failed'));

    const summary = await runner.finish();

    expect(summary.phase).toBe('failed');
    expect(summary.exitCode).toBe(ExitCode.failed);
    expect(readJournal(journal.path).at(-1)).toMatchObject({
      type: 'run-end',
      phase: 'failed',
      error: 'rsync failed',
    });
  });

  it('finish is idempotent', async () => {
    const runner = newRunner();

    const first = await runner.finish();
    const second = await runner.finish(new Error('late'));

    expect(second).toBe(first);
    expect(readJournal(journal.path).filter((record) => record.type === 'run-end')).toHaveLength(1);
  });

  it('refuses a step once the run was aborted, without running it', async () => {
    const runner = newRunner();
    runner.abort('SIGTERM');

    const step = runner.step(marker('a'));

    await expect(step).rejects.toThrow(/interrupted \(SIGTERM\); step "Make a" was not started/);
    expect(events).toEqual([]);
  });

  it('is aborted by the caller signal', async () => {
    const controller = new AbortController();
    const runner = createRunner({ runId: 'run-1', journal, log, signal: controller.signal });

    controller.abort();

    expect(runner.aborted).toBe(true);
    expect(runner.signal.aborted).toBe(true);
  });
});

describe('timings', () => {
  it('times every step, journaled or not, and every undo', async () => {
    const runner = newRunner();

    await runProcedure(runner, async (r) => {
      await r.step({
        kind: 'check',
        title: 'Check',
        run: () => new Promise((resolve) => setTimeout(resolve, 20)),
      });
      await r.step(marker('a'));
      await r.undoNow('make-a');
    });

    expect(runner.timings.map((t) => [t.step, t.kind, t.undo, t.outcome])).toEqual([
      [1, 'check', false, 'ok'],
      [2, 'make-a', false, 'ok'],
      [2, 'make-a', true, 'ok'],
    ]);
    expect(runner.timings[0]!.durationMs).toBeGreaterThanOrEqual(15);
    expect(Date.parse(runner.timings[0]!.startedAt)).not.toBeNaN();
    // A step without undo changes nothing worth journaling.
    expect(journalTypes()).not.toContain('step-begin 1');
  });
});

describe('early undo and dropped undo in the normal flow', () => {
  it('undoNow runs the undo at once, journals it, and a later failure does not run it again', async () => {
    const runner = newRunner();

    const summary = await runProcedure(runner, async (r) => {
      await r.step(marker('freeze'));
      await r.step(marker('snapshot'));
      await r.undoNow('make-freeze');
      await r.step(marker('copy', { fail: true }));
    });

    expect(events).toEqual([
      'do freeze',
      'do snapshot',
      'undo freeze (freeze-id)',
      'do copy',
      'undo copy (no result)',
      'undo snapshot (snapshot-id)',
    ]);
    expect(summary.phase).toBe('failed');
    expect(journalTypes()).toContain('undo-done 1');
  });

  it('undoNow returns false when nothing of that kind is pending', async () => {
    const runner = newRunner();

    const found = await runner.undoNow('make-x');

    expect(found).toBe(false);
  });

  it('undoNow keeps a failed undo on the stack, in its place, for undoAll to retry', async () => {
    const runner = newRunner();
    let attempts = 0;
    await runner.step(marker('a'));
    await runner.step({
      kind: 'mount',
      title: 'Mount',
      run: async () => 'mnt',
      undo: async () => {
        attempts += 1;
        events.push(`unmount attempt ${attempts}`);
        if (attempts === 1) throw new Error('target is busy');
      },
    });
    await runner.step(marker('b'));

    const undoNow = runner.undoNow('mount');
    await expect(undoNow).rejects.toThrow('target is busy');
    const failures = await runner.undoAll('mount failed');

    expect(failures).toEqual([]);
    expect(runner.pending()).toEqual([]);
    expect(events).toEqual([
      'do a',
      'do b',
      'unmount attempt 1',
      'undo b (b-id)',
      'unmount attempt 2',
      'undo a (a-id)',
    ]);
  });

  it('dropUndo keeps the step for good: not undone on failure, and recovery leaves it too', async () => {
    const runner = newRunner();

    const summary = await runProcedure(runner, async (r) => {
      await r.step(marker('snapshot'));
      r.dropUndo('make-snapshot');
      await r.step(marker('catalog', { fail: true }));
    });

    expect(summary.phase).toBe('failed');
    expect(events).toEqual(['do snapshot', 'do catalog', 'undo catalog (no result)']);
    expect(journalTypes()).toContain('undo-dropped 1');
    expect(pendingSteps(readJournal(journal.path))).toEqual([]);
  });

  it('defer pushes an undo-only entry that is journaled and undone in order', async () => {
    const runner = newRunner();

    await runProcedure(runner, async (r) => {
      await r.step(marker('a'));
      await r.defer({
        kind: 'start-dss',
        title: 'Start DSS again',
        intent: { dataDir: '/data/dss' },
        undo: async () => void events.push('start dss'),
      });
      await r.step(marker('b', { fail: true }));
    });

    expect(events).toEqual(['do a', 'do b', 'undo b (no result)', 'start dss', 'undo a (a-id)']);
    expect(readJournal(journal.path)).toContainEqual(
      expect.objectContaining({
        type: 'step-begin',
        step: 2,
        kind: 'start-dss',
        intent: { dataDir: '/data/dss' },
      }),
    );
  });
});

describe('dry run', () => {
  it('runs nothing, journals nothing, and lists the steps and early undos it would take', async () => {
    const runner = createRunner({ runId: 'plan-1', log, dryRun: true });

    const summary = await runProcedure(runner, async (r) => {
      await r.step({ kind: 'check-jobs', title: 'Check jobs', run: async () => events.push('checked') });
      const snapshots = await r.step({
        ...marker('snapshot'),
        preview: () => '<snapshot of vol-1>',
      });
      await r.step({ ...marker('mount'), title: `Mount ${snapshots}` });
      await r.undoNow('make-mount');
      r.dropUndo('make-snapshot');
    });

    expect(events).toEqual([]);
    expect(summary.phase).toBe('completed');
    expect(runner.plan).toEqual([
      {
        action: 'do',
        kind: 'check-jobs',
        title: 'Check jobs',
        intent: null,
        mutates: false,
        undoable: false,
      },
      {
        action: 'do',
        kind: 'make-snapshot',
        title: 'Make snapshot',
        intent: { name: 'snapshot' },
        mutates: true,
        undoable: true,
      },
      {
        action: 'do',
        kind: 'make-mount',
        title: 'Mount <snapshot of vol-1>',
        intent: { name: 'mount' },
        mutates: true,
        undoable: true,
      },
      {
        action: 'undo',
        kind: 'make-mount',
        title: 'Mount <snapshot of vol-1>',
        intent: null,
        mutates: true,
        undoable: false,
      },
    ]);
    expect(existsSync(journalPath(stateDir, 'plan-1'))).toBe(false);
  });

  it('returns undefined for a step without preview', async () => {
    const runner = createRunner({ runId: 'plan-1', log, dryRun: true });

    const result = await runner.step(marker('a'));

    expect(result).toBeUndefined();
  });

  it('needs a journal unless it is a dry run', () => {
    const create = () => createRunner({ runId: 'run-2', log });

    expect(create).toThrow(/needs a journal/);
  });
});

describe('installSignalHandlers', () => {
  it('on SIGTERM aborts the current step, waits for it to settle, undoes, journals undone and exits 130', async () => {
    const runner = newRunner();
    const emitter = new EventEmitter();
    const exited = new Promise<number>((resolve) => {
      installSignalHandlers(runner, {
        log,
        emitter,
        exit: resolve,
        beforeExit: (summary) => void events.push(`before exit: ${summary.phase}`),
      });
    });
    let stepStarted!: () => void;
    const started = new Promise<void>((resolve) => (stepStarted = resolve));
    const procedure = runProcedure(runner, async (r) => {
      await r.step(marker('a'));
      await r.step({
        kind: 'copy',
        title: 'Copy',
        run: (signal) =>
          new Promise((_, reject) => {
            stepStarted();
            signal.addEventListener('abort', () =>
              setTimeout(() => {
                events.push('copy stopped');
                reject(signal.reason);
              }, 30),
            );
          }),
        undo: async () => void events.push('remove partial copy'),
      });
    });
    await started;

    emitter.emit('SIGTERM', 'SIGTERM');
    emitter.emit('SIGINT', 'SIGINT');
    const code = await exited;
    const summary = await procedure;

    expect(code).toBe(130);
    expect(events).toEqual([
      'do a',
      'copy stopped',
      'remove partial copy',
      'undo a (a-id)',
      'before exit: undone',
    ]);
    expect(summary.phase).toBe('undone');
    expect(summary.exitCode).toBe(ExitCode.interrupted);
    expect(readJournal(journal.path).at(-1)).toMatchObject({ type: 'run-end', phase: 'undone' });
  });

  it('stops listening once uninstalled', () => {
    const runner = newRunner();
    const emitter = new EventEmitter();
    const uninstall = installSignalHandlers(runner, { log, emitter, exit: () => {} });

    uninstall();
    emitter.emit('SIGINT', 'SIGINT');

    expect(runner.aborted).toBe(false);
    expect(emitter.listenerCount('SIGINT')).toBe(0);
  });
});

describe('a real process receiving SIGTERM mid-procedure', () => {
  let tree: ChildTree;

  beforeAll(() => {
    tree = transpileForChild();
  });

  afterAll(() => {
    tree.remove();
  });

  it('undoes what it did in reverse order, archives its journal, frees its lock and exits 130', async () => {
    const world = join(stateDir, 'world');
    mkdirSync(world);
    const child = startChild(tree.childScript, ['procedure', stateDir, world, 'child-run', 'wait']);
    try {
      await child.waitForLine(/^waiting$/);

      child.process.kill('SIGTERM');
      const exit = await child.exited;

      expect(exit.code).toBe(130);
      expect(['a', 'b', 'c', 'd', 'e'].filter((name) => existsSync(join(world, name)))).toEqual([]);
      expect(readFileSync(join(world, 'undo.log'), 'utf8')).toBe('d\nc\nb\na\n');
      const archived = join(stateDir, 'journal', 'done', 'child-run.jsonl');
      expect(readJournal(archived).at(-1)).toMatchObject({ type: 'run-end', phase: 'undone' });
      expect(existsSync(journalPath(stateDir, 'child-run'))).toBe(false);
      expect(listLocks(stateDir)).toEqual([]);
    } finally {
      child.process.kill('SIGKILL');
    }
  });
});
