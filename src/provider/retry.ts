/**
 * The retry decorator: retries live here, once, and providers only classify their errors
 * (`isPermanent`, `isNotFound`) — STYLE.md habit 4, after restic's backend decorator.
 */
import { DssnapError, errorMessage } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import type { Exposure, Snapshot, SnapshotProvider } from './types.js';
import { backoffDelay, sleep } from './wait.js';

export interface RetryOptions {
  /** Total tries per call, the first included. Default 5. */
  attempts?: number;
  /** Delay before the first retry. Default 1000 ms; doubles per retry, jittered. */
  minDelayMs?: number;
  /** Longest delay between tries. Default 20 000 ms. */
  maxDelayMs?: number;
  log?: Logger;
  /** Aborting stops retrying: the pending delay ends with INTERRUPTED. */
  signal?: AbortSignal;
  /** Jitter source in [0, 1), for tests. */
  random?: () => number;
}

/**
 * A SnapshotProvider whose calls are retried with jittered exponential backoff while
 * `provider.isPermanent(error)` is false; the last error is rethrown unchanged. In `ensureDeleted` and
 * `ensureReleased` an error the provider classifies as not-found counts as success (already gone).
 * `createSnapshots` is called once, never retried (see below). Properties and classifiers pass through.
 */
export function withRetries(provider: SnapshotProvider, options: RetryOptions = {}): SnapshotProvider {
  const attempts = options.attempts ?? 5;
  const minDelayMs = options.minDelayMs ?? 1000;
  const maxDelayMs = options.maxDelayMs ?? 20_000;
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new DssnapError('USAGE', `Invalid retry option attempts=${attempts}: must be an integer >= 1`, {
      details: { field: 'attempts', value: attempts },
    });
  }
  if (!(minDelayMs > 0) || !(maxDelayMs >= minDelayMs)) {
    throw new DssnapError(
      'USAGE',
      `Invalid retry options minDelayMs=${minDelayMs}, maxDelayMs=${maxDelayMs}: need 0 < minDelayMs <= maxDelayMs`,
      { details: { minDelayMs, maxDelayMs } },
    );
  }
  const log = (options.log ?? silentLogger()).child({ provider: provider.id });

  async function retried<T>(method: string, call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (attempt >= attempts || provider.isPermanent(error)) throw error;
        const delayMs = backoffDelay({ attempt, minDelayMs, maxDelayMs, random: options.random });
        log.warn(
          { method, attempt, attempts, delayMs: Math.round(delayMs), error: errorMessage(error) },
          'Provider call failed; retrying',
        );
        await sleep(delayMs, options.signal, `a retry of ${provider.id}.${method}`);
      }
    }
  }

  // Not-found is checked on every try, before the retry decision: "already gone" ends the call at once.
  function alreadyGoneIsSuccess(method: string, call: () => Promise<void>): Promise<void> {
    return retried(method, async () => {
      try {
        await call();
      } catch (error) {
        if (!provider.isNotFound(error)) throw error;
        log.debug({ method, error: errorMessage(error) }, 'Resource already gone');
      }
    });
  }

  return {
    id: provider.id,
    defaultQuiesce: provider.defaultQuiesce,
    supportedQuiesce: provider.supportedQuiesce,
    permissions: provider.permissions,
    locate: (dataDir) => retried('locate', () => provider.locate(dataDir)),
    // Not retried: createSnapshots is not idempotent, and a failure can be ambiguous (a timeout after the
    // platform accepted the call), so a retry could make a second, untracked set. The cloud SDKs already
    // retry the throttling errors that prove nothing started; anything else fails the run, whose undo
    // stack and tag-based `cleanup` remove whatever the failed call left.
    createSnapshots: (volumes, tags) => provider.createSnapshots(volumes, tags),
    progress: (snapshot) => retried('progress', () => provider.progress(snapshot)),
    // Retried although a cloud expose creates a volume: its resources are tagged (role exposure), so one
    // left by a failed try is found by `orphans` and removed by `cleanup`.
    expose: (snapshot, tags) => retried('expose', () => provider.expose(snapshot, tags)),
    ensureReleased: (exposure: Exposure) =>
      alreadyGoneIsSuccess('ensureReleased', () => provider.ensureReleased(exposure)),
    ensureDeleted: (snapshot: Snapshot) =>
      alreadyGoneIsSuccess('ensureDeleted', () => provider.ensureDeleted(snapshot)),
    retain: (snapshot, tags) => retried('retain', () => provider.retain(snapshot, tags)),
    list: (selector) => retried('list', () => provider.list(selector)),
    orphans: (selector) => retried('orphans', () => provider.orphans(selector)),
    ...(provider.doctor ? { doctor: (context: { dataDir?: string }) => provider.doctor!(context) } : {}),
    // Optional checks pass through unretried: they change nothing and their failures are the answer.
    ...(provider.checkQuiesce
      ? { checkQuiesce: (volumes, quiesce) => provider.checkQuiesce!(volumes, quiesce) }
      : {}),
    ...(provider.checkExposure ? { checkExposure: (exposure) => provider.checkExposure!(exposure) } : {}),
    ...(provider.apiCalls ? { apiCalls: () => provider.apiCalls!() } : {}),
    isNotFound: (error) => provider.isNotFound(error),
    isPermanent: (error) => provider.isPermanent(error),
  };
}
