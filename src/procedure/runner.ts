/**
 * The step runner: runs a procedure's steps one after another (or a few at once), keeps the undo of
 * every step that changed the world on a stack, and journals each step so that another process can
 * undo it after a SIGKILL. A failure or a SIGINT/SIGTERM undoes the stack in reverse order; the
 * normal flow also undoes some steps early (`undoNow`: thaw right after the snapshot, unmount,
 * release) or drops them (`dropUndo`: a retained snapshot).
 */
import { DssnapError, ExitCode, type ExitCodeValue, errorMessage, exitCodeFor } from '../errors.js';
import type { Logger } from '../log.js';
import type { Journal, Json, RunPhase } from './journal.js';

export interface StepSpec<T> {
  /** Stable name of what the step does (`fsfreeze`, `snapshot`, `mount`): the recovery handler key. */
  kind: string;
  /** What the user reads in progress output and `dssnap plan`. */
  title: string;
  /**
   * Journaled before `run` starts: enough for another process to undo a half-done step (the mount
   * point about to be frozen, the tags of the snapshots about to be created).
   */
  intent?: Json;
  /** Does the work. Should stop early when `signal` aborts (SIGINT/SIGTERM); the runner waits for it. */
  run: (signal: AbortSignal) => Promise<T>;
  /** What the step did, journaled after `run` (ids of created resources). */
  record?: (result: T) => Json;
  /**
   * Undoes the step. Gets `undefined` when `run` threw: a step that failed half-way may have changed
   * the world, so the undo must be idempotent (`ensure…`) and cope with nothing to undo.
   */
  undo?: (result: T | undefined) => Promise<void>;
  /** Journal this step (begin/done). Defaults to true when `undo` is given. */
  mutates?: boolean;
  /** Dry run only: the placeholder returned instead of running (`<snapshot of vol-1>`). */
  preview?: () => T;
}

export interface DeferSpec {
  kind: string;
  title: string;
  intent?: Json;
  undo: () => Promise<void>;
}

export interface StepTiming {
  step: number;
  kind: string;
  title: string;
  /** ISO-8601. */
  startedAt: string;
  durationMs: number;
  outcome: 'ok' | 'failed';
  /** True for the timing of an undo. */
  undo: boolean;
}

export interface UndoFailure {
  step: number;
  kind: string;
  title: string;
  message: string;
  error: unknown;
}

export interface RunWarning {
  message: string;
  details?: Record<string, unknown>;
}

/** One line of `dssnap plan`. */
export interface PlannedStep {
  action: 'do' | 'undo';
  kind: string;
  title: string;
  intent: Json;
  mutates: boolean;
  undoable: boolean;
}

export interface RunSummary {
  runId: string;
  phase: RunPhase;
  /** The documented exit code for this outcome: 0, 2 (warnings), 130 (interrupted) or the error's. */
  exitCode: ExitCodeValue;
  warnings: RunWarning[];
  undoFailures: UndoFailure[];
  timings: StepTiming[];
  error?: unknown;
}

export interface Runner {
  readonly runId: string;
  readonly phase: RunPhase;
  readonly dryRun: boolean;
  /** Aborted on SIGINT/SIGTERM (or the caller's signal); passed to every `run`. */
  readonly signal: AbortSignal;
  readonly aborted: boolean;
  readonly timings: readonly StepTiming[];
  readonly warnings: readonly RunWarning[];
  /** Dry run: the steps and early undos the procedure would take, in order. */
  readonly plan: readonly PlannedStep[];
  /** Kinds of the undos still pending, oldest first. */
  pending(): string[];
  /**
   * Run a step now and return its result. Its undo (if any) goes on the stack even when `run`
   * throws. Throws INTERRUPTED without running when the run was aborted, and `run`'s error as is.
   */
  step<T>(spec: StepSpec<T>): Promise<T>;
  /**
   * Push an undo-only entry (journaled, so recovery also does it). Returns once recorded; if the run
   * is already being undone, runs the undo at once instead.
   */
  defer(spec: DeferSpec): Promise<void>;
  /**
   * Run the newest pending undo of `kind` now and drop it from the stack. Returns false when none is
   * pending. When the undo throws, it stays on the stack (undoAll retries it) and the error is thrown.
   */
  undoNow(kind: string): Promise<boolean>;
  /**
   * Drop the newest pending undo of `kind` without running it (journaled: recovery leaves it too).
   * Returns false when none is pending.
   */
  dropUndo(kind: string): boolean;
  addWarning(message: string, details?: Record<string, unknown>): void;
  /** Abort `signal` and refuse new steps. Idempotent. */
  abort(reason: string): void;
  /** Resolves when no step or early undo is in flight. */
  settled(): Promise<void>;
  /**
   * Wait for the steps in flight, then run every pending undo, newest first. An undo that throws is
   * logged, journaled and returned; the others still run. Concurrent calls share one undo; no step
   * can start afterwards. Must not be called from inside a step.
   */
  undoAll(reason: unknown): Promise<UndoFailure[]>;
  /**
   * End the run and journal `run-end`; idempotent (concurrent calls share the first summary). With an
   * `error`, undoes what is pending first; after `undoAll`, its reason counts as the error. Without one, throws INTERNAL if undos are still pending:
   * the procedure must undo (`undoNow`) or keep (`dropUndo`) each step before reporting success.
   */
  finish(error?: unknown): Promise<RunSummary>;
}

export interface CreateRunnerOptions {
  runId: string;
  /** Required unless `dryRun`. */
  journal?: Journal;
  log: Logger;
  /** Aborting it aborts the run like a signal does. */
  signal?: AbortSignal;
  /** Record what would be done; call no `run` and no undo, write no journal. */
  dryRun?: boolean;
}

interface PendingUndo {
  step: number;
  kind: string;
  title: string;
  /** False for steps that were not journaled: their undo is not journaled either. */
  journaled: boolean;
  undo: () => Promise<void>;
}

export function createRunner(options: CreateRunnerOptions): Runner {
  const { runId, log } = options;
  const dryRun = options.dryRun ?? false;
  const journal = options.journal;
  if (!dryRun && !journal)
    throw new DssnapError('INTERNAL', 'A runner needs a journal unless it is a dry run');

  const controller = new AbortController();
  const stack: PendingUndo[] = [];
  const inFlight = new Set<Promise<unknown>>();
  const timings: StepTiming[] = [];
  const warnings: RunWarning[] = [];
  const undoFailures: UndoFailure[] = [];
  const plan: PlannedStep[] = [];
  let phase: RunPhase = 'planned';
  let counter = 0;
  let abortReason: string | undefined;
  let undoing: Promise<UndoFailure[]> | undefined;
  let undoReason: unknown;
  let finishing: Promise<RunSummary> | undefined;

  if (options.signal) {
    if (options.signal.aborted) abort('caller signal');
    else options.signal.addEventListener('abort', () => abort('caller signal'), { once: true });
  }

  function abort(reason: string): void {
    if (controller.signal.aborted) return;
    abortReason = reason;
    controller.abort(new DssnapError('INTERRUPTED', `The run was interrupted (${reason})`));
  }

  function track<T>(promise: Promise<T>): Promise<T> {
    inFlight.add(promise);
    const remove = (): void => {
      inFlight.delete(promise);
    };
    promise.then(remove, remove);
    return promise;
  }

  async function settled(): Promise<void> {
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
  }

  function refuseNewStep(title: string): void {
    if (finishing) throw new DssnapError('INTERNAL', `The run has finished; step "${title}" cannot start`);
    if (abortReason !== undefined) {
      throw new DssnapError(
        'INTERRUPTED',
        `The run was interrupted (${abortReason}); step "${title}" was not started`,
      );
    }
    if (undoing) throw new DssnapError('INTERNAL', `The run is being undone; step "${title}" cannot start`);
  }

  function append(entry: Parameters<Journal['append']>[0]): void {
    if (!dryRun) journal!.append(entry);
  }

  function timed(
    step: number,
    kind: string,
    title: string,
    undo: boolean,
  ): (outcome: 'ok' | 'failed') => number {
    const startedAt = new Date().toISOString();
    const started = performance.now();
    return (outcome) => {
      const durationMs = performance.now() - started;
      timings.push({ step, kind, title, startedAt, durationMs, outcome, undo });
      return durationMs;
    };
  }

  async function runUndo(entry: PendingUndo): Promise<void> {
    const { step, kind, title } = entry;
    if (entry.journaled) append({ type: 'undo-begin', step, kind, by: 'run' });
    const done = timed(step, kind, title, true);
    try {
      await entry.undo();
    } catch (error) {
      const durationMs = done('failed');
      log.error({ step, kind, title, durationMs, err: error }, 'Undo failed');
      if (entry.journaled) append({ type: 'undo-failed', step, kind, error: errorMessage(error) });
      throw error;
    }
    const durationMs = done('ok');
    log.info({ step, kind, title, durationMs }, 'Undone');
    if (entry.journaled) append({ type: 'undo-done', step, kind });
  }

  async function executeStep<T>(spec: StepSpec<T>, step: number): Promise<T> {
    const { kind, title } = spec;
    const undoable = spec.undo !== undefined;
    const mutates = spec.mutates ?? undoable;
    const journaled = mutates && !dryRun;
    if (journaled) append({ type: 'step-begin', step, kind, title, intent: spec.intent ?? null, undoable });
    log.debug({ step, kind, title }, 'Step started');
    const done = timed(step, kind, title, false);
    let result: T;
    try {
      result = await spec.run(controller.signal);
    } catch (error) {
      const durationMs = done('failed');
      log.error({ step, kind, title, durationMs, err: error }, 'Step failed');
      if (spec.undo) stack.push({ step, kind, title, journaled, undo: () => spec.undo!(undefined) });
      try {
        if (journaled) append({ type: 'step-failed', step, kind, error: errorMessage(error) });
      } catch (journalError) {
        log.error({ step, kind, err: journalError }, 'Could not journal a failed step');
      }
      throw error;
    }
    const durationMs = done('ok');
    log.info({ step, kind, title, durationMs }, 'Step done');
    // Pushed before journaling: if the record cannot be written, the undo still happens.
    if (spec.undo) stack.push({ step, kind, title, journaled, undo: () => spec.undo!(result) });
    if (journaled)
      append({ type: 'step-done', step, kind, record: spec.record ? spec.record(result) : null });
    return result;
  }

  const runner: Runner = {
    runId,
    dryRun,
    get phase() {
      return phase;
    },
    get signal() {
      return controller.signal;
    },
    get aborted() {
      return controller.signal.aborted;
    },
    timings,
    warnings,
    plan,

    pending() {
      return stack.map((entry) => entry.kind);
    },

    async step<T>(spec: StepSpec<T>): Promise<T> {
      refuseNewStep(spec.title);
      if (phase === 'planned') phase = 'running';
      counter += 1;
      const step = counter;
      if (dryRun) {
        const undoable = spec.undo !== undefined;
        plan.push({
          action: 'do',
          kind: spec.kind,
          title: spec.title,
          intent: spec.intent ?? null,
          mutates: spec.mutates ?? undoable,
          undoable,
        });
        if (undoable)
          stack.push({ step, kind: spec.kind, title: spec.title, journaled: false, undo: async () => {} });
        return spec.preview ? spec.preview() : (undefined as T);
      }
      return track(executeStep(spec, step));
    },

    async defer(spec) {
      if (finishing)
        throw new DssnapError('INTERNAL', `The run has finished; "${spec.title}" cannot be deferred`);
      counter += 1;
      const entry: PendingUndo = {
        step: counter,
        kind: spec.kind,
        title: spec.title,
        journaled: !dryRun,
        undo: spec.undo,
      };
      if (dryRun) {
        stack.push({ ...entry, undo: async () => {} });
        return;
      }
      append({
        type: 'step-begin',
        step: entry.step,
        kind: spec.kind,
        title: spec.title,
        intent: spec.intent ?? null,
        undoable: true,
      });
      append({ type: 'step-done', step: entry.step, kind: spec.kind, record: null });
      if (undoing) {
        // The stack is being (or was) emptied: an undo registered now would be lost.
        await runUndo(entry);
        return;
      }
      stack.push(entry);
    },

    async undoNow(kind) {
      const index = stack.findLastIndex((entry) => entry.kind === kind);
      if (index < 0) return false;
      const [entry] = stack.splice(index, 1);
      if (dryRun) {
        plan.push({
          action: 'undo',
          kind,
          title: entry!.title,
          intent: null,
          mutates: true,
          undoable: false,
        });
        return true;
      }
      try {
        await track(runUndo(entry!));
      } catch (error) {
        // Back in its place, so that undoAll retries it in the right order.
        const position = stack.findIndex((other) => other.step > entry!.step);
        stack.splice(position < 0 ? stack.length : position, 0, entry!);
        throw error;
      }
      return true;
    },

    dropUndo(kind) {
      const index = stack.findLastIndex((entry) => entry.kind === kind);
      if (index < 0) return false;
      const [entry] = stack.splice(index, 1);
      if (entry!.journaled) append({ type: 'undo-dropped', step: entry!.step, kind });
      log.debug({ step: entry!.step, kind }, 'Undo dropped');
      return true;
    },

    addWarning(message, details) {
      warnings.push(details ? { message, details } : { message });
      log.warn({ warning: message, ...details }, 'Run warning');
    },

    abort,
    settled,

    undoAll(reason) {
      if (undoing) return undoing;
      undoReason = reason;
      undoing = (async () => {
        await settled();
        if (stack.length > 0)
          log.warn({ reason: errorMessage(reason), pending: runner.pending() }, 'Undoing the run');
        const failures: UndoFailure[] = [];
        while (stack.length > 0) {
          const entry = stack.pop()!;
          if (dryRun) continue;
          try {
            await runUndo(entry);
          } catch (error) {
            failures.push({
              step: entry.step,
              kind: entry.kind,
              title: entry.title,
              message: errorMessage(error),
              error,
            });
          }
        }
        undoFailures.push(...failures);
        return failures;
      })();
      return undoing;
    },

    finish(finishError) {
      if (finishing) return finishing;
      // A run that was undone did not succeed, even if the caller reports no error.
      const error = finishError ?? undoReason;
      if (error === undefined && !dryRun && stack.length > 0) {
        return Promise.reject(
          new DssnapError(
            'INTERNAL',
            `The procedure ended with undos still pending: ${runner.pending().join(', ')}`,
            {
              hint: 'This is a bug in dssnap: each step must be undone (undoNow) or kept (dropUndo) before success.',
            },
          ),
        );
      }
      finishing = (async () => {
        await settled();
        if (error !== undefined) await runner.undoAll(error);
        phase = finalPhase(error);
        const summary: RunSummary = {
          runId,
          phase,
          exitCode: exitCodeOf(phase, error),
          warnings: [...warnings],
          undoFailures: [...undoFailures],
          timings: [...timings],
        };
        if (error !== undefined) summary.error = error;
        append(
          error === undefined
            ? { type: 'run-end', phase }
            : { type: 'run-end', phase, error: errorMessage(error) },
        );
        log.info({ phase, warnings: warnings.length, undoFailures: undoFailures.length }, 'Run ended');
        return summary;
      })();
      return finishing;
    },
  };

  function finalPhase(error: unknown): RunPhase {
    if (error === undefined && undoFailures.length === 0) {
      return warnings.length > 0 ? 'completed-with-warnings' : 'completed';
    }
    if (undoFailures.length > 0) return 'failed';
    return controller.signal.aborted ? 'undone' : 'failed';
  }

  function exitCodeOf(finalPhaseValue: RunPhase, error: unknown): ExitCodeValue {
    if (controller.signal.aborted && error !== undefined) return ExitCode.interrupted;
    switch (finalPhaseValue) {
      case 'completed':
        return ExitCode.ok;
      case 'completed-with-warnings':
        return ExitCode.completedWithWarnings;
      case 'undone':
        return ExitCode.interrupted;
      default:
        return error === undefined ? ExitCode.failed : exitCodeFor(error);
    }
  }

  return runner;
}

/**
 * Run `body` with `runner` and end the run: on success `finish()`, on any error undo everything and
 * `finish(error)`. Never throws for the body's errors: they are in the returned summary (with
 * `exitCode`), so the CLI has one path for every outcome.
 */
export async function runProcedure<R>(
  runner: Runner,
  body: (runner: Runner) => Promise<R>,
): Promise<RunSummary & { result?: R }> {
  let result: R;
  try {
    result = await body(runner);
  } catch (error) {
    return runner.finish(error);
  }
  try {
    return { ...(await runner.finish()), result };
  } catch (error) {
    return runner.finish(error);
  }
}

export interface SignalHandlerOptions {
  log: Logger;
  /** Where signals come from; tests pass their own EventEmitter. */
  emitter?: Pick<NodeJS.EventEmitter, 'on' | 'off'>;
  signals?: readonly NodeJS.Signals[];
  /** Called with 130 once the run is undone; tests pass a spy. */
  exit?: (code: number) => void;
  /** Runs after the undo and `run-end`, before exit: close and archive the journal, release the lock. */
  beforeExit?: (summary: RunSummary) => void | Promise<void>;
}

/**
 * On SIGINT/SIGTERM: abort the runner's signal, wait for the current step to settle, undo the
 * stack, journal the end (`undone`), call `beforeExit`, then exit with 130. Further signals while
 * undoing are logged and ignored: leaving a frozen filesystem or a stopped DSS would be worse than
 * waiting (a SIGKILL still leaves the journal for `dssnap recover`). Returns the uninstaller.
 */
export function installSignalHandlers(runner: Runner, options: SignalHandlerOptions): () => void {
  const emitter = options.emitter ?? process;
  const signals = options.signals ?? ['SIGINT', 'SIGTERM'];
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let stopping = false;

  async function stop(signal: string): Promise<void> {
    try {
      const summary = await runner.finish(
        new DssnapError('INTERRUPTED', `The run was interrupted by ${signal}`),
      );
      await options.beforeExit?.(summary);
    } catch (error) {
      options.log.error({ err: error }, 'Could not end the run after an interrupt');
    }
    exit(ExitCode.interrupted);
  }

  function onSignal(signal: NodeJS.Signals): void {
    if (stopping) {
      options.log.warn({ signal }, 'Already stopping: waiting for the undo to finish');
      return;
    }
    stopping = true;
    options.log.warn({ signal }, 'Interrupted: waiting for the current step, then undoing the run');
    runner.abort(signal);
    void stop(signal);
  }

  for (const signal of signals) emitter.on(signal, onSignal);
  return () => {
    for (const signal of signals) emitter.off(signal, onSignal);
  };
}
