import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TagKey } from '../../src/provider/types.js';
import { createFakeProvider, type FakeMethod, readFakeState } from './index.js';

describe('fake provider', () => {
  let root: string;
  let dataDir: string;
  let stateDir: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'dssnap-fake-test-'));
    dataDir = join(root, 'data');
    stateDir = join(root, 'state');
    await mkdir(join(dataDir, 'config'), { recursive: true });
    await writeFile(join(dataDir, 'config', 'settings.json'), '{"v":1}\n');
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('keeps its state in a file, so another process finds and removes what a killed run left', async () => {
    const first = await createFakeProvider({ stateDir });
    const [snapshot] = await first.createSnapshots(await first.locate(dataDir), {
      [TagKey.runId]: 'killed',
      [TagKey.dataDir]: dataDir,
    });
    await first.expose(snapshot!, { [TagKey.runId]: 'killed', [TagKey.dataDir]: dataDir });
    const second = await createFakeProvider({ stateDir });

    const orphans = await second.orphans({ dataDir });
    for (const orphan of orphans.filter((found) => found.kind === 'exposure')) {
      await second.ensureReleased({ snapshotId: snapshot!.id, resources: [orphan.id] });
    }
    for (const orphan of orphans.filter((found) => found.kind === 'snapshot')) {
      await second.ensureDeleted({ ...snapshot!, id: orphan.id });
    }

    expect(orphans.map((found) => found.kind).sort()).toEqual(['exposure', 'snapshot']);
    expect(await second.orphans({ dataDir })).toEqual([]);
    expect(existsSync(snapshot!.attributes!.directory!)).toBe(false);
  });

  it('copies DATA_DIR at snapshot time and records every call', async () => {
    const provider = await createFakeProvider({ stateDir });
    const [snapshot] = await provider.createSnapshots(await provider.locate(dataDir), {
      [TagKey.runId]: 'r1',
    });
    await writeFile(join(dataDir, 'config', 'settings.json'), '{"v":2}\n');

    const exposure = await provider.expose(snapshot!, {});

    expect(await readFile(join(exposure.directory!, 'config', 'settings.json'), 'utf8')).toBe('{"v":1}\n');
    const { calls } = await readFakeState(stateDir);
    expect(calls.map((call) => call.method)).toEqual(['locate', 'createSnapshots', 'expose']);
    expect(calls[2]!.target).toBe(snapshot!.id);
  });

  it('answers pending for pendingPolls polls, then ready', async () => {
    const provider = await createFakeProvider({ stateDir, settings: { pendingPolls: 2 } });
    const [snapshot] = await provider.createSnapshots(await provider.locate(dataDir), {});

    const states = [];
    for (let poll = 0; poll < 3; poll++) states.push((await provider.progress(snapshot!)).state);

    expect(states).toEqual(['pending', 'pending', 'ready']);
  });

  it('reports a failed snapshot when progressFailure is set', async () => {
    const provider = await createFakeProvider({ stateDir, settings: { progressFailure: 'quota exceeded' } });
    const [snapshot] = await provider.createSnapshots(await provider.locate(dataDir), {});

    const progress = await provider.progress(snapshot!);

    expect(progress).toEqual({ state: 'failed', reason: 'quota exceeded' });
  });

  it.each([
    ['transient', { isPermanent: false, isNotFound: false }],
    ['permanent', { isPermanent: true, isNotFound: false }],
    ['not-found', { isPermanent: true, isNotFound: true }],
  ] as const)('injects a %s fault that it classifies itself', async (kind, expected) => {
    const provider = await createFakeProvider({ stateDir, settings: { faults: { list: { error: kind } } } });

    const error = await provider.list({}).catch((thrown: unknown) => thrown);

    expect(error).toMatchObject({ message: expect.stringContaining(`Injected ${kind} fault in fake list`) });
    expect({ isPermanent: provider.isPermanent(error), isNotFound: provider.isNotFound(error) }).toEqual(
      expected,
    );
  });

  it('fails only the calls selected by afterCalls and times', async () => {
    const provider = await createFakeProvider({
      stateDir,
      settings: { faults: { list: { error: 'transient', afterCalls: 1, times: 2 } } },
    });

    const outcomes = [];
    for (let call = 0; call < 4; call++)
      outcomes.push(
        await provider.list({}).then(
          () => 'ok',
          () => 'failed',
        ),
      );

    expect(outcomes).toEqual(['ok', 'failed', 'failed', 'ok']);
  });

  it('hangs a method for the configured time, and an abort ends the hang', async () => {
    const controller = new AbortController();
    const provider = await createFakeProvider({
      stateDir,
      settings: { hang: { method: 'locate', ms: 60_000 } },
      signal: controller.signal,
    });

    const pending = provider.locate(dataDir);
    setTimeout(() => controller.abort(), 20);

    await expect(pending).rejects.toMatchObject({ code: 'INTERRUPTED' });
  });

  it('fails progress, expose and retain on an unknown snapshot with not-found, and deletes idempotently', async () => {
    const provider = await createFakeProvider({ stateDir });
    const ghost = { id: 'fake-snap-999', provider: 'fake', volumeId: 'v', createdAt: '', tags: {} };

    const errors = await Promise.all(
      (['progress', 'expose', 'retain'] as FakeMethod[]).map((method) =>
        (method === 'progress'
          ? provider.progress(ghost)
          : method === 'expose'
            ? provider.expose(ghost, {})
            : provider.retain(ghost, {})
        ).catch((thrown: unknown) => thrown),
      ),
    );

    for (const error of errors) expect(provider.isNotFound(error)).toBe(true);
    await expect(provider.ensureDeleted(ghost)).resolves.toBeUndefined();
  });

  it.each([
    [{ pendingPolls: -1 }, "setting 'pendingPolls' = -1"],
    [
      { faults: { snapshot: { error: 'transient' } } },
      "unknown key(s) 'snapshot' in setting 'faults' (valid: locate, createSnapshots",
    ],
    [{ faults: { list: { error: 'flaky' } } }, 'setting \'faults.list.error\' = "flaky"'],
    [
      { pendingPoll: 1 },
      "unknown setting(s) 'pendingPoll' (valid: nestedVolumes, pendingPolls, faults, hang, progressFailure)",
    ],
  ])('rejects bad settings %j naming the setting', async (settings, message) => {
    const creating = createFakeProvider({ stateDir, settings });

    await expect(creating).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining(message),
    });
  });
});
