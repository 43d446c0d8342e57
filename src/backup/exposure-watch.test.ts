import { describe, expect, it } from 'vitest';
import { DssnapError } from '../errors.js';
import type { Exposure, SnapshotProvider } from '../provider/types.js';
import { watchExposures } from './exposure-watch.js';

const exposures: Exposure[] = [{ snapshotId: 'vg/data-snap', device: '/dev/vg/data-snap', resources: [] }];

/** A provider whose `checkExposure` fails from call number `failFrom` on (never when undefined). */
function checkingProvider(failFrom?: number): { provider: SnapshotProvider; checks: () => number } {
  let checks = 0;
  const provider = {
    async checkExposure() {
      checks++;
      if (failFrom !== undefined && checks >= failFrom) {
        throw new DssnapError('PROVIDER_ERROR', 'The LVM snapshot vg/data-snap overflowed');
      }
    },
  } as unknown as SnapshotProvider;
  return { provider, checks: () => checks };
}

/** A copy that lasts until its signal aborts (or `ms`), like rsync killed by its signal. */
function longCopy(ms: number) {
  return (signal: AbortSignal) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => resolve('copied'), ms);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(new Error('rsync was killed'));
      });
    });
}

describe('watchExposures', () => {
  it('stops a long copy as soon as a check fails, with the check’s error rather than the copy’s', async () => {
    const { provider, checks } = checkingProvider(3);
    const started = performance.now();

    const copy = watchExposures(provider, exposures, 20).during(
      new AbortController().signal,
      longCopy(60_000),
    );

    await expect(copy).rejects.toThrow('The LVM snapshot vg/data-snap overflowed');
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(checks()).toBe(3);
  });

  it('returns the copy when every check passes, and checks no more once it is done', async () => {
    const { provider, checks } = checkingProvider();

    const result = await watchExposures(provider, exposures, 20).during(
      new AbortController().signal,
      longCopy(150),
    );
    const after = checks();
    await new Promise((resolve) => setTimeout(resolve, 100));

    expect(result).toBe('copied');
    expect(after).toBeGreaterThan(0);
    expect(checks()).toBe(after);
  });

  it('reports a copy that failed reading a dead snapshot by the snapshot’s error, not the read error', async () => {
    const { provider } = checkingProvider(1);
    const failingCopy = async () => {
      throw new Error('rsync: read errors mapping "managed_datasets/a.bin": Input/output error (5)');
    };

    const copy = watchExposures(provider, exposures, 10_000).during(
      new AbortController().signal,
      failingCopy,
    );

    await expect(copy).rejects.toThrow('The LVM snapshot vg/data-snap overflowed');
  });

  it('keeps the copy’s own error when the snapshots are fine', async () => {
    const { provider } = checkingProvider();
    const failingCopy = async () => {
      throw new Error('rsync: No space left on device (28)');
    };

    const copy = watchExposures(provider, exposures, 10_000).during(
      new AbortController().signal,
      failingCopy,
    );

    await expect(copy).rejects.toThrow('No space left on device');
  });

  it('passes an interruption (SIGINT) on to the copy', async () => {
    const { provider } = checkingProvider();
    const interrupt = new AbortController();

    const copy = watchExposures(provider, exposures, 10_000).during(interrupt.signal, longCopy(60_000));
    interrupt.abort(new Error('SIGINT'));

    await expect(copy).rejects.toThrow('rsync was killed');
  });

  it('leaves a copy alone when the provider cannot check exposures', async () => {
    const provider = {} as SnapshotProvider;

    const result = await watchExposures(provider, exposures, 1).during(
      new AbortController().signal,
      longCopy(30),
    );

    expect(result).toBe('copied');
  });
});
