/**
 * fsfreeze around the snapshot instant. Thaw is in a `finally` and guarded by a watchdog: a frozen
 * filesystem left behind blocks every writer on the host (ec2-consistent-snapshot #2, #29, #96).
 */
import { DssnapError } from '../errors.js';
import type { Logger } from '../log.js';
import { CommandError, run } from './exec.js';

export interface FreezeResult<T> {
  value: T;
  /** Milliseconds from the first freeze to the last thaw: the pause writers saw. */
  pauseMs: number;
}

export async function freeze(mountPoint: string): Promise<void> {
  await run('fsfreeze', ['--freeze', mountPoint], { timeoutMs: 30_000 });
}

/** Thaw `mountPoint`. Idempotent: thawing a filesystem that is not frozen is success. */
export async function ensureThawed(mountPoint: string): Promise<void> {
  try {
    await run('fsfreeze', ['--unfreeze', mountPoint], { timeoutMs: 30_000 });
  } catch (error) {
    // The kernel answers EINVAL when the filesystem is not frozen.
    if (error instanceof CommandError && /Invalid argument/i.test(error.stderr)) return;
    throw error;
  }
}

/**
 * Freeze every mount point, run `action` (the snapshot call), thaw every mount point — the pause.
 * If `action` runs longer than `maxPauseMs`, the watchdog thaws at once and the run fails: a
 * snapshot call that hangs must never keep DSS frozen.
 */
export async function whileFrozen<T>(
  mountPoints: readonly string[],
  action: () => Promise<T>,
  options: { maxPauseMs: number; log: Logger },
): Promise<FreezeResult<T>> {
  const frozen: string[] = [];
  const started = performance.now();
  let watchdog: NodeJS.Timeout | undefined;
  const thawAll = async (): Promise<void> => {
    while (frozen.length > 0) {
      const mountPoint = frozen[frozen.length - 1]!;
      await ensureThawed(mountPoint);
      frozen.pop();
    }
  };
  try {
    for (const mountPoint of mountPoints) {
      // Recorded before the call: a freeze that fails half-way may still have frozen.
      frozen.push(mountPoint);
      await freeze(mountPoint);
    }
    const timeout = new Promise<never>((_, reject) => {
      watchdog = setTimeout(() => {
        thawAll().catch((error) => options.log.error({ err: error }, 'Watchdog failed to thaw'));
        reject(
          new DssnapError(
            'TIMEOUT',
            `The snapshot call did not return within --max-pause (${options.maxPauseMs} ms); the filesystem was thawed and the run fails`,
            { hint: 'Raise --max-pause if the platform is slow to accept snapshots, or check the provider.' },
          ),
        );
      }, options.maxPauseMs);
    });
    const value = await Promise.race([action(), timeout]);
    await thawAll();
    return { value, pauseMs: performance.now() - started };
  } finally {
    if (watchdog) clearTimeout(watchdog);
    await thawAll();
  }
}
