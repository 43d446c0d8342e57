import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createFakeProvider } from '../../providers/fake/index.js';
import type { Snapshot, SnapshotProgress, SnapshotProvider } from './types.js';
import { backoffDelay, type WaitPoll, waitFor, waitForSnapshotsReady } from './wait.js';

describe('backoffDelay', () => {
  it('doubles from minDelay and stops at maxDelay', () => {
    const delays = [1, 2, 3, 4, 5, 6].map((attempt) =>
      backoffDelay({ attempt, minDelayMs: 100, maxDelayMs: 1000, random: () => 1 }),
    );

    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it.each([1, 2, 3, 4, 5, 8, 20])(
    'keeps the jittered delay of attempt %i within [max(min, ceiling/2), ceiling]',
    (attempt) => {
      const ceiling = Math.min(30_000, 1000 * 2 ** (attempt - 1));
      const samples = [0, 0.1, 0.5, 0.9, 0.999999].map((value) =>
        backoffDelay({ attempt, minDelayMs: 1000, maxDelayMs: 30_000, random: () => value }),
      );

      for (const delay of samples) {
        expect(delay).toBeGreaterThanOrEqual(Math.max(1000, ceiling / 2));
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    },
  );

  it.each([
    [0, 1000],
    [3000, 1000],
    [8000, 2000],
    [1_000_000, 30_000],
  ])(
    'after %i ms waited, never sleeps more than max(minDelay, a quarter of it): %i ms',
    (elapsedMs, bound) => {
      const delay = backoffDelay({
        attempt: 30,
        minDelayMs: 1000,
        maxDelayMs: 30_000,
        elapsedMs,
        random: () => 1,
      });

      expect(delay).toBe(bound);
    },
  );
});

describe('waitFor', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  /** Run the wait on fake time to its end; returns its outcome and the fake time it took. */
  async function settle<T>(wait: Promise<T>): Promise<{ value?: T; error?: unknown; tookMs: number }> {
    const started = Date.now();
    const outcome: { value?: T; error?: unknown } = {};
    const done = wait.then(
      (value) => {
        outcome.value = value;
      },
      (error: unknown) => {
        outcome.error = error;
      },
    );
    await vi.runAllTimersAsync();
    await done;
    return { ...outcome, tookMs: Date.now() - started };
  }

  function readyAfter(ms: number, polls: number[] = []): (attempt: number) => Promise<WaitPoll<number>> {
    const started = Date.now();
    return async () => {
      const elapsed = Date.now() - started;
      polls.push(elapsed);
      return elapsed >= ms ? { done: true, value: elapsed } : { done: false, observed: { elapsed } };
    };
  }

  it.each([
    ['the longest jitter', () => 1],
    ['the shortest jitter', () => 0],
    ['random jitter', Math.random],
  ])('notices a state reached after 3 s within 1 s, with %s', async (_case, random) => {
    const wait = waitFor(readyAfter(3000), {
      description: 'a snapshot to be ready',
      deadlineMs: 60_000,
      random,
    });

    const { value } = await settle(wait);

    expect(value).toBeGreaterThanOrEqual(3000);
    expect(value).toBeLessThanOrEqual(4000);
  });

  it('polls less and less often as the wait grows long', async () => {
    const polls: number[] = [];
    const wait = waitFor(readyAfter(10 * 60_000, polls), {
      description: 'a large snapshot',
      deadlineMs: 3_600_000,
      random: () => 1,
    });

    await settle(wait);

    const gaps = polls.slice(1).map((at, index) => at - polls[index]!);
    expect(gaps.every((gap, index) => index === 0 || gap >= gaps[index - 1]!)).toBe(true);
    expect(Math.max(...gaps)).toBe(30_000);
    expect(polls.length).toBeLessThan(60);
  });

  it('times out at the deadline naming what it waited for, how long, and the last observed state', async () => {
    const wait = waitFor(async () => ({ done: false, observed: { state: 'pending', percent: 40 } }), {
      description: 'snapshot snap-1 to be ready',
      deadlineMs: 5000,
    });

    const { error, tookMs } = await settle(wait);

    expect(error).toMatchObject({
      code: 'TIMEOUT',
      message:
        'Timed out after 5.0 s waiting for snapshot snap-1 to be ready; last observed: {"state":"pending","percent":40}',
    });
    expect(tookMs).toBe(5000);
  });

  it('times out even when a poll hangs past the deadline', async () => {
    const wait = waitFor(() => new Promise<WaitPoll<void>>(() => undefined), {
      description: 'a hung API call',
      deadlineMs: 2000,
    });

    const { error, tookMs } = await settle(wait);

    expect(error).toMatchObject({ code: 'TIMEOUT', message: expect.stringContaining('a hung API call') });
    expect(tookMs).toBe(2000);
  });

  it('fails at once when a poll reports failed, without waiting for the deadline', async () => {
    let polls = 0;
    const wait = waitFor<void>(
      async () => {
        polls++;
        return polls < 2 ? { done: false } : { failed: true, reason: 'snapshot is in state error' };
      },
      { description: 'snapshot snap-2 to be ready', deadlineMs: 3_600_000 },
    );

    const { error, tookMs } = await settle(wait);

    expect(error).toMatchObject({
      code: 'PROVIDER_ERROR',
      message: 'Failed while waiting for snapshot snap-2 to be ready: snapshot is in state error',
    });
    expect(polls).toBe(2);
    expect(tookMs).toBeLessThanOrEqual(1000);
  });

  it('ends with the error a poll throws', async () => {
    const wait = waitFor(
      async () => {
        throw new Error('AccessDenied');
      },
      { description: 'x', deadlineMs: 10_000 },
    );

    const { error } = await settle(wait);

    expect(error).toMatchObject({ message: 'AccessDenied' });
  });

  it.each([
    ['while sleeping', async () => ({ done: false }) as WaitPoll<void>],
    ['during a poll that hangs', () => new Promise<WaitPoll<void>>(() => undefined)],
  ])('stops with INTERRUPTED when aborted %s', async (_case, poll) => {
    const controller = new AbortController();
    const wait = waitFor(poll, {
      description: 'snapshot snap-3',
      deadlineMs: 3_600_000,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 1500);

    const { error, tookMs } = await settle(wait);

    expect(error).toMatchObject({
      code: 'INTERRUPTED',
      message: 'Interrupted while waiting for snapshot snap-3',
    });
    expect(tookMs).toBe(1500);
  });

  it('reports each observed state to onPoll', async () => {
    const seen: unknown[] = [];
    const wait = waitFor(readyAfter(2000), {
      description: 'x',
      deadlineMs: 10_000,
      onPoll: (observed) => seen.push(observed),
    });

    await settle(wait);

    expect(seen).toEqual([{ elapsed: 0 }, { elapsed: 1000 }]);
  });

  it.each([
    [
      { minDelayMs: 5000, maxDelayMs: 1000 },
      'Invalid wait option minDelayMs=5000: must be <= maxDelayMs (1000)',
    ],
    [{ minDelayMs: 0 }, 'Invalid wait option minDelayMs=0: must be a number > 0'],
    [{ maxDelayMs: Number.NaN }, 'Invalid wait option maxDelayMs=NaN: must be a number > 0'],
    [{ deadlineMs: -1 }, 'Invalid wait option deadlineMs=-1: must be a number > 0'],
    [{ description: ' ' }, 'Invalid wait option description=" ": must be a non-empty string'],
  ])('rejects bad options %j naming the field and the value', async (bad, message) => {
    const wait = waitFor(async () => ({ done: true, value: 1 }), {
      description: 'x',
      deadlineMs: 1000,
      ...bad,
    });

    await expect(wait).rejects.toMatchObject({ code: 'USAGE', message });
  });
});

describe('waitForSnapshotsReady', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'dssnap-wait-'));
    await mkdir(join(root, 'data'));
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('returns the snapshots once every one is ready', async () => {
    const provider = await createFakeProvider({
      stateDir: join(root, 'state'),
      settings: { pendingPolls: 3 },
    });
    const snapshots = await provider.createSnapshots(await provider.locate(join(root, 'data')), {});

    const ready = await waitForSnapshotsReady(provider, snapshots, {
      minDelayMs: 5,
      maxDelayMs: 20,
      deadlineMs: 10_000,
    });

    expect(ready).toEqual(snapshots);
    expect(await provider.progress(snapshots[0]!)).toEqual({ state: 'ready' });
  });

  it('fails at once, naming the snapshot, when the provider reports it failed', async () => {
    const provider = await createFakeProvider({
      stateDir: join(root, 'state'),
      settings: { progressFailure: 'quota' },
    });
    const snapshots = await provider.createSnapshots(await provider.locate(join(root, 'data')), {});
    const started = Date.now();

    const waiting = waitForSnapshotsReady(provider, snapshots, { deadlineMs: 600_000 });

    await expect(waiting).rejects.toMatchObject({
      message: expect.stringContaining(`snapshot ${snapshots[0]!.id} failed: quota`),
    });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('times out listing the snapshots still pending and their progress', async () => {
    const pending: SnapshotProgress = { state: 'pending', percent: 12 };
    const provider = { id: 'slow', progress: async () => pending } as unknown as SnapshotProvider;
    const snapshot = { id: 'snap-9' } as Snapshot;

    const waiting = waitForSnapshotsReady(provider, [snapshot], {
      minDelayMs: 5,
      maxDelayMs: 10,
      deadlineMs: 50,
    });

    await expect(waiting).rejects.toMatchObject({
      code: 'TIMEOUT',
      message: expect.stringMatching(
        /waiting for slow snapshot\(s\) snap-9 to be ready; last observed: .*"id":"snap-9","percent":12/,
      ),
    });
  });
});
