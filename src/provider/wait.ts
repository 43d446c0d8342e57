/**
 * The one waiting helper (model: smithy `util-waiter` in AWS SDK v3). A caller supplies one poll; this
 * module owns the backoff, the deadline, cancellation and the error that says what was last observed.
 * Providers never sleep-loop themselves (STYLE.md habit 2).
 */
import { DssnapError } from '../errors.js';
import type { Snapshot, SnapshotProgress, SnapshotProvider } from './types.js';

/** The outcome of one poll: finished with a value, not yet (with what was seen), or failed for good. */
export type WaitPoll<T> =
  | { done: true; value: T }
  | { done: false; observed?: unknown }
  | { failed: true; reason: string };

export interface WaitOptions {
  /** What is waited for, as it reads after "waiting for" in an error ("snapshot snap-1 to be ready"). */
  description: string;
  /** First delay between polls. Default 1000 ms. */
  minDelayMs?: number;
  /** Longest delay between polls. Default 30 000 ms. */
  maxDelayMs?: number;
  /** Total time allowed, from the first poll; then a TIMEOUT error. */
  deadlineMs: number;
  /** Aborting ends the wait at once with INTERRUPTED, even during a poll that hangs. */
  signal?: AbortSignal;
  /** Called after each poll that is not done, with what it observed (for progress display and logs). */
  onPoll?(observed: unknown, attempt: number): void;
  /** Source of randomness for the jitter, in [0, 1). Tests pin it; defaults to Math.random. */
  random?: () => number;
}

export interface BackoffInput {
  /** 1 for the delay after the first poll. */
  attempt: number;
  minDelayMs: number;
  maxDelayMs: number;
  /** Time already waited; bounds the delay (see `elapsedFraction`). Infinity disables that bound. */
  elapsedMs?: number;
  random?: () => number;
}

/**
 * A delay never exceeds this fraction of the time already waited (nor goes below minDelay): a state
 * change is then noticed at most max(minDelay, elapsed / 4) late. Plain doubling from 1 s can sleep
 * 4 s past a snapshot that was ready after 3 s; DESIGN.md §5 wants it noticed within 1 s.
 */
export const elapsedFraction = 0.25;

/**
 * The delay before the next poll: exponential from minDelay (×2 per attempt), capped by maxDelay and by
 * a quarter of the elapsed time, then jittered down by up to half ("equal jitter") so that many waiters
 * do not poll in step; never below minDelay. Pure; returns milliseconds.
 */
export function backoffDelay(input: BackoffInput): number {
  const { attempt, minDelayMs, maxDelayMs } = input;
  const random = input.random ?? Math.random;
  const exponential = minDelayMs * 2 ** Math.min(Math.max(attempt - 1, 0), 40);
  const proportional = Math.max(minDelayMs, (input.elapsedMs ?? Number.POSITIVE_INFINITY) * elapsedFraction);
  const ceiling = Math.min(maxDelayMs, exponential, proportional);
  return Math.max(minDelayMs, ceiling * (0.5 + random() / 2));
}

/**
 * Poll until `poll` reports done, then return its value. Polls at once, then with `backoffDelay`.
 * Throws DssnapError TIMEOUT at the deadline (naming what was waited for, for how long and the last
 * observed state), the poll's reason at once when a poll reports `failed` (never wait to the deadline
 * after the provider reported an error: Velero #6620), INTERRUPTED when `signal` aborts, USAGE for bad
 * options. An error thrown by `poll` ends the wait with that error (retries belong to `withRetries`).
 */
export async function waitFor<T>(
  poll: (attempt: number) => Promise<WaitPoll<T>>,
  options: WaitOptions,
): Promise<T> {
  const { description, signal } = options;
  const minDelayMs = options.minDelayMs ?? 1000;
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  validateOptions(description, minDelayMs, maxDelayMs, options.deadlineMs);

  const started = Date.now();
  const deadline = started + options.deadlineMs;
  let observed: unknown;
  let hasObserved = false;
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(signal, description);
    const result = await raceDeadline(poll(attempt), deadline, signal, description);
    if (result === deadlineReached) break;
    if ('failed' in result) {
      throw new DssnapError('PROVIDER_ERROR', `Failed while waiting for ${description}: ${result.reason}`, {
        details: { description, attempt, reason: result.reason },
      });
    }
    if (result.done) return result.value;
    observed = result.observed;
    hasObserved = 'observed' in result;
    options.onPoll?.(observed, attempt);

    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    const delayMs = backoffDelay({
      attempt,
      minDelayMs,
      maxDelayMs,
      elapsedMs: Date.now() - started,
      random: options.random,
    });
    // Sleep at most until the deadline, so the last poll happens right at it.
    await sleep(Math.min(delayMs, remaining), signal, description);
  }
  const waitedS = ((Date.now() - started) / 1000).toFixed(1);
  const last = hasObserved ? `; last observed: ${describeObserved(observed)}` : '';
  throw new DssnapError('TIMEOUT', `Timed out after ${waitedS} s waiting for ${description}${last}`, {
    hint: 'The operation may still finish on its own: check it with the platform tools, raise the wait timeout, or run `dssnap cleanup` to remove what this run left.',
    details: { description, deadlineMs: options.deadlineMs, observed },
  });
}

export interface SnapshotWaitOptions extends Omit<WaitOptions, 'description' | 'minDelayMs'> {
  description?: string;
  /** Default 500 ms: a local or small cloud snapshot is often ready within seconds. */
  minDelayMs?: number;
}

/**
 * Wait until every snapshot's `progress` is ready; returns the snapshots. Polls only those not yet
 * ready. Fails at once when one reports `failed` (the error names it), TIMEOUT at the deadline with
 * the pending ones and their percentages. Errors thrown by `progress` end the wait: wrap the provider
 * in `withRetries` to ride out transient ones.
 */
export async function waitForSnapshotsReady(
  provider: SnapshotProvider,
  snapshots: readonly Snapshot[],
  options: SnapshotWaitOptions,
): Promise<Snapshot[]> {
  const ready = new Set<string>();
  const ids = snapshots.map((snapshot) => snapshot.id).join(', ');
  return waitFor<Snapshot[]>(
    async () => {
      const pending: Array<{ id: string; percent?: number }> = [];
      for (const snapshot of snapshots) {
        if (ready.has(snapshot.id)) continue;
        const progress: SnapshotProgress = await provider.progress(snapshot);
        if (progress.state === 'failed') {
          return { failed: true, reason: `snapshot ${snapshot.id} failed: ${progress.reason}` };
        }
        if (progress.state === 'ready') ready.add(snapshot.id);
        else
          pending.push(
            progress.percent === undefined
              ? { id: snapshot.id }
              : { id: snapshot.id, percent: progress.percent },
          );
      }
      return pending.length === 0
        ? { done: true, value: [...snapshots] }
        : { done: false, observed: { pending } };
    },
    {
      ...options,
      minDelayMs: options.minDelayMs ?? 500,
      description: options.description ?? `${provider.id} snapshot(s) ${ids} to be ready`,
    },
  );
}

/** Resolve after `ms`, or reject with INTERRUPTED as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal, what = 'a delay'): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(interrupted(what, signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(interrupted(what, signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

const deadlineReached = Symbol('deadline');

/** A poll that hangs must not hold the wait past its deadline or past an abort. */
function raceDeadline<T>(
  pending: Promise<T>,
  deadline: number,
  signal: AbortSignal | undefined,
  description: string,
): Promise<T | typeof deadlineReached> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => finish(() => resolve(deadlineReached)),
      Math.max(deadline - Date.now(), 0),
    );
    const onAbort = (): void => finish(() => reject(interrupted(description, signal)));
    signal?.addEventListener('abort', onAbort, { once: true });
    let settled = false;
    function finish(action: () => void): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      action();
    }
    pending.then(
      (value) => finish(() => resolve(value)),
      (error: unknown) => finish(() => reject(error)),
    );
  });
}

function throwIfAborted(signal: AbortSignal | undefined, description: string): void {
  if (signal?.aborted) throw interrupted(description, signal);
}

function interrupted(what: string, signal: AbortSignal | undefined): DssnapError {
  return new DssnapError('INTERRUPTED', `Interrupted while waiting for ${what}`, {
    cause: signal?.reason,
    details: { description: what },
  });
}

function validateOptions(
  description: string,
  minDelayMs: number,
  maxDelayMs: number,
  deadlineMs: number,
): void {
  const fail = (field: string, value: unknown, rule: string): never => {
    throw new DssnapError('USAGE', `Invalid wait option ${field}=${String(value)}: ${rule}`, {
      details: { field, value, description },
    });
  };
  if (typeof description !== 'string' || description.trim() === '') {
    fail('description', JSON.stringify(description), 'must be a non-empty string');
  }
  if (!Number.isFinite(minDelayMs) || minDelayMs <= 0) fail('minDelayMs', minDelayMs, 'must be a number > 0');
  if (!Number.isFinite(maxDelayMs) || maxDelayMs <= 0) fail('maxDelayMs', maxDelayMs, 'must be a number > 0');
  if (minDelayMs > maxDelayMs) fail('minDelayMs', minDelayMs, `must be <= maxDelayMs (${maxDelayMs})`);
  if (!Number.isFinite(deadlineMs) || deadlineMs <= 0) fail('deadlineMs', deadlineMs, 'must be a number > 0');
}

function describeObserved(observed: unknown): string {
  if (typeof observed === 'string') return observed;
  try {
    const text = JSON.stringify(observed);
    return text.length > 500 ? `${text.slice(0, 500)}…` : text;
  } catch {
    return String(observed);
  }
}
