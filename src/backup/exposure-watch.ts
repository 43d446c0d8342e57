/**
 * Whether the exposed snapshots still hold the snapshot instant while a copy reads them. Some snapshots
 * can die under a reader: an LVM classic snapshot whose copy-on-write space fills up is invalidated by
 * the kernel, and what the copy read after (or even before) that is not the snapshot instant. The copy
 * is watched with the provider's optional `checkExposure`: every `intervalMs` during the copy (a failed
 * check stops it at once) and once more after it, before anything is unmounted, so that a copy read from
 * an invalidated snapshot is never catalogued. Providers without `checkExposure` are not watched.
 */
import type { Runner } from '../procedure/runner.js';
import type { Exposure, SnapshotProvider } from '../provider/types.js';

/** Default time between two checks during a copy: `lvs` is cheap, a copy lasts minutes. */
export const exposureCheckIntervalMs = 10_000;

export interface ExposureWatch {
  /**
   * Run `copy` with a signal that aborts when a check fails (or when `signal` aborts). Rejects with the
   * failed check's error rather than the copy's "aborted" one.
   */
  during<T>(signal: AbortSignal, copy: (signal: AbortSignal) => Promise<T>): Promise<T>;
  /** `copy` as a step's `run`, watched (`during`). */
  guard<T>(copy: (signal: AbortSignal) => Promise<T>): (signal: AbortSignal) => Promise<T>;
  /** The check after the copy, as a step of its own (timed, shown by `dssnap plan`). */
  afterCopy(runner: Runner): Promise<void>;
}

/** No snapshot to watch (a cold copy). */
export const unwatched: ExposureWatch = {
  during: (signal, copy) => copy(signal),
  guard: (copy) => copy,
  afterCopy: async () => undefined,
};

export function watchExposures(
  provider: SnapshotProvider,
  exposures: readonly Exposure[],
  intervalMs: number = exposureCheckIntervalMs,
): ExposureWatch {
  const check = provider.checkExposure?.bind(provider);
  const checkAll = async (): Promise<void> => {
    for (const exposure of exposures) await check?.(exposure);
  };
  const watch: ExposureWatch = {
    guard: (copy) => (signal) => watch.during(signal, copy),
    async during(signal, copy) {
      if (!check || exposures.length === 0) return copy(signal);
      const stop = new AbortController();
      const onAbort = (): void => stop.abort(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      let failure: { error: unknown } | undefined;
      let done = false;
      let timer: NodeJS.Timeout | undefined;
      let checking: Promise<void> = Promise.resolve();
      // One check at a time: the next one is scheduled when the previous one ends.
      const schedule = (): void => {
        timer = setTimeout(() => {
          checking = checkAll().then(
            () => {
              if (!done && !stop.signal.aborted) schedule();
            },
            (error: unknown) => {
              failure = { error };
              stop.abort(error);
            },
          );
        }, intervalMs);
      };
      if (!signal.aborted) schedule();
      else onAbort();
      try {
        const result = await copy(stop.signal);
        if (failure) throw failure.error;
        return result;
      } catch (error) {
        done = true;
        clearTimeout(timer);
        await checking;
        if (failure) throw failure.error;
        // A copy that failed reading a snapshot that died under it (EIO): report the cause.
        if (!signal.aborted) await checkAll();
        throw error;
      } finally {
        done = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        await checking;
      }
    },
    async afterCopy(runner) {
      if (!check || exposures.length === 0) return;
      await runner.step({
        kind: 'check-exposures',
        title: `Check that ${exposures.map((e) => e.snapshotId).join(', ')} still hold the snapshot instant`,
        run: checkAll,
        preview: () => undefined,
      });
    },
  };
  return watch;
}
