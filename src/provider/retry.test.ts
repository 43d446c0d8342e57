import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFakeProvider, type FakeSettings, readFakeState } from '../../providers/fake/index.js';
import { withRetries } from './retry.js';
import type { Snapshot } from './types.js';

// The real fake provider with injected faults; tiny delays keep the tests fast.
describe('withRetries', () => {
  let root: string;
  let stateDir: string;
  let dataDir: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'dssnap-retry-'));
    stateDir = join(root, 'state');
    dataDir = join(root, 'data');
    await mkdir(dataDir);
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function faulty(settings: FakeSettings) {
    return createFakeProvider({ stateDir, settings });
  }

  async function callCount(method: string): Promise<number> {
    return (await readFakeState(stateDir)).calls.filter((call) => call.method === method).length;
  }

  it('retries transient errors until the call succeeds, logging each retry', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    const provider = withRetries(await faulty({ faults: { locate: { error: 'transient', times: 2 } } }), {
      minDelayMs: 1,
      maxDelayMs: 5,
      log,
    });

    const volumes = await provider.locate(dataDir);

    expect(volumes).toHaveLength(1);
    expect(await callCount('locate')).toBe(3);
    expect(lines.map((line) => JSON.parse(line))).toEqual([
      expect.objectContaining({
        msg: 'Provider call failed; retrying',
        method: 'locate',
        attempt: 1,
        provider: 'fake',
      }),
      expect.objectContaining({ msg: 'Provider call failed; retrying', method: 'locate', attempt: 2 }),
    ]);
  });

  it('gives up after `attempts` tries with the last error', async () => {
    const provider = withRetries(await faulty({ faults: { list: { error: 'transient' } } }), {
      attempts: 3,
      minDelayMs: 1,
      maxDelayMs: 5,
    });

    const listing = provider.list({});

    await expect(listing).rejects.toMatchObject({
      message: 'Injected transient fault in fake list (call 3)',
    });
    expect(await callCount('list')).toBe(3);
  });

  it('does not retry a permanent error', async () => {
    const provider = withRetries(await faulty({ faults: { orphans: { error: 'permanent' } } }), {
      minDelayMs: 1,
    });

    const listing = provider.orphans({});

    await expect(listing).rejects.toMatchObject({
      message: expect.stringContaining('Injected permanent fault'),
    });
    expect(await callCount('orphans')).toBe(1);
  });

  it.each(['ensureDeleted', 'ensureReleased'] as const)(
    'counts not-found in %s as success, without retrying',
    async (method) => {
      const provider = withRetries(await faulty({ faults: { [method]: { error: 'not-found' } } }), {
        minDelayMs: 1,
      });
      const snapshot: Snapshot = {
        id: 'fake-snap-1',
        provider: 'fake',
        volumeId: 'v',
        createdAt: '',
        tags: {},
      };

      const ensuring =
        method === 'ensureDeleted'
          ? provider.ensureDeleted(snapshot)
          : provider.ensureReleased({ snapshotId: snapshot.id, resources: ['fake-exp-1'] });

      await expect(ensuring).resolves.toBeUndefined();
      expect(await callCount(method)).toBe(1);
    },
  );

  it('still fails ensureDeleted on a permanent error that is not not-found', async () => {
    const provider = withRetries(await faulty({ faults: { ensureDeleted: { error: 'permanent' } } }), {
      minDelayMs: 1,
    });
    const snapshot: Snapshot = {
      id: 'fake-snap-1',
      provider: 'fake',
      volumeId: 'v',
      createdAt: '',
      tags: {},
    };

    await expect(provider.ensureDeleted(snapshot)).rejects.toMatchObject({
      message: expect.stringContaining('permanent'),
    });
  });

  it('calls createSnapshots once, even on a transient error: it is not idempotent', async () => {
    const provider = withRetries(
      await faulty({ faults: { createSnapshots: { error: 'transient', times: 1 } } }),
      {
        minDelayMs: 1,
      },
    );
    const volumes = await provider.locate(dataDir);

    const creating = provider.createSnapshots(volumes, {});

    await expect(creating).rejects.toMatchObject({
      message: expect.stringContaining('Injected transient fault'),
    });
    expect(await callCount('createSnapshots')).toBe(1);
    expect(await provider.list({})).toEqual([]);
  });

  it('stops retrying with INTERRUPTED when aborted during the delay', async () => {
    const controller = new AbortController();
    const provider = withRetries(await faulty({ faults: { list: { error: 'transient' } } }), {
      minDelayMs: 60_000,
      maxDelayMs: 60_000,
      signal: controller.signal,
    });

    const listing = provider.list({});
    setTimeout(() => controller.abort(), 50);

    await expect(listing).rejects.toMatchObject({ code: 'INTERRUPTED' });
    expect(await callCount('list')).toBe(1);
  });

  it('passes the provider declarations and classifiers through', async () => {
    const inner = await faulty({});

    const provider = withRetries(inner);

    expect(provider).toMatchObject({
      id: 'fake',
      defaultQuiesce: inner.defaultQuiesce,
      supportedQuiesce: inner.supportedQuiesce,
      permissions: inner.permissions,
    });
  });

  it.each([
    [{ attempts: 0 }, 'Invalid retry option attempts=0: must be an integer >= 1'],
    [
      { minDelayMs: 10, maxDelayMs: 5 },
      'Invalid retry options minDelayMs=10, maxDelayMs=5: need 0 < minDelayMs <= maxDelayMs',
    ],
  ])('rejects bad options %j', async (options, message) => {
    const inner = await faulty({});

    expect(() => withRetries(inner, options)).toThrow(message);
  });
});
