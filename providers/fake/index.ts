/**
 * The fake provider, for procedure tests: snapshots are `cp -a --reflink=auto` copies of DATA_DIR under
 * `stateDir/fake-snapshots/<id>/`, and faults are injected from settings. Its state lives in
 * `stateDir/fake-provider.json`, not only in memory, so that a run killed with SIGKILL leaves records
 * another process can find (`orphans`) and remove, as with a real provider.
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { DssnapError } from '../../src/errors.js';
import { run } from '../../src/host/exec.js';
import { findMount } from '../../src/provider/find-mount.js';
import { parseProviderSettings } from '../../src/provider/settings.js';
import { isRetained, matchesSelector, newestFirst, ownedTags } from '../../src/provider/tags.js';
import {
  type Exposure,
  type OwnedResource,
  type ProviderFactory,
  type ProviderOptions,
  type Snapshot,
  type SnapshotProgress,
  type SnapshotProvider,
  TagKey,
  type Tags,
  type Volume,
} from '../../src/provider/types.js';
import { sleep } from '../../src/provider/wait.js';

export const fakeMethods = [
  'locate',
  'createSnapshots',
  'progress',
  'expose',
  'ensureReleased',
  'checkExposure',
  'ensureDeleted',
  'retain',
  'list',
  'orphans',
] as const;
export type FakeMethod = (typeof fakeMethods)[number];
export type FakeFaultKind = 'transient' | 'permanent' | 'not-found';

const faultSchema = z.strictObject({
  error: z.enum(['transient', 'permanent', 'not-found']),
  /** How many calls fail; unlimited when absent. */
  times: z.number().int().positive().optional(),
  /** How many calls succeed before the first failing one. Default 0. */
  afterCalls: z.number().int().nonnegative().optional(),
});

const settingsSchema = z.strictObject({
  /** Paths of other filesystems mounted below DATA_DIR that `locate` reports as volumes of their own. */
  nestedVolumes: z.array(z.string().min(1)).optional(),
  /** Polls answered `pending` before `ready`. Default 1. */
  pendingPolls: z.number().int().nonnegative().optional(),
  faults: z.partialRecord(z.enum(fakeMethods), faultSchema).optional(),
  /** Every call of `method` sleeps `ms` first (abortable by the provider's signal). */
  hang: z.strictObject({ method: z.enum(fakeMethods), ms: z.number().int().nonnegative() }).optional(),
  /** When set, `progress` reports every snapshot `failed` with this reason. */
  progressFailure: z.string().min(1).optional(),
});

export type FakeSettings = z.infer<typeof settingsSchema>;

/** One recorded call, in call order. `target` names what it was called on (ids, a path). */
export interface FakeCall {
  method: FakeMethod;
  at: string;
  target?: string;
}

export interface FakeState {
  version: 1;
  nextId: number;
  snapshots: Record<string, { snapshot: Snapshot; directory: string; polls: number }>;
  exposures: Record<string, { exposure: Exposure; tags: Tags; createdAt: string }>;
  calls: FakeCall[];
}

/** An error raised by the fake, injected or real ("does not exist"); `kind` drives its classification. */
export class FakeProviderError extends DssnapError {
  readonly kind: FakeFaultKind;

  constructor(kind: FakeFaultKind, message: string, details: Record<string, unknown> = {}) {
    super(kind === 'not-found' ? 'NOT_FOUND' : 'PROVIDER_ERROR', message, { details: { ...details, kind } });
    this.name = 'FakeProviderError';
    this.kind = kind;
  }
}

/** Path of the fake's state file under `stateDir`. */
export function fakeStatePath(stateDir: string): string {
  return join(stateDir, 'fake-provider.json');
}

/** The fake's persisted state (an empty one when none was written yet), for tests to assert on. */
export async function readFakeState(stateDir: string): Promise<FakeState> {
  try {
    return JSON.parse(await readFile(fakeStatePath(stateDir), 'utf8')) as FakeState;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
    throw error;
  }
}

export const factory: ProviderFactory = {
  id: 'fake',
  description: 'Test double: snapshots are directory copies under the state dir, with fault injection',
  create: async (options) => createFakeProvider(options),
};

/** Build a fake provider over `options.stateDir` (created if missing). Throws CONFIG_INVALID for bad settings. */
export async function createFakeProvider(options: ProviderOptions): Promise<SnapshotProvider> {
  const settings = parseProviderSettings('fake', settingsSchema, options.settings);
  const stateDir = resolve(options.stateDir);
  const snapshotsDir = join(stateDir, 'fake-snapshots');
  await mkdir(snapshotsDir, { recursive: true });
  const pendingPolls = settings.pendingPolls ?? 1;

  const mutate = <R>(change: (state: FakeState) => R): Promise<R> => mutateState(stateDir, change);

  /** Record the call (before anything else, so a killed process leaves it), then hang / fail as told. */
  async function enter(method: FakeMethod, target?: string): Promise<void> {
    const callNumber = await mutate((state) => {
      state.calls.push(target === undefined ? { method, at: now() } : { method, at: now(), target });
      return state.calls.filter((call) => call.method === method).length;
    });
    if (settings.hang?.method === method)
      await sleep(settings.hang.ms, options.signal, `fake ${method} (hang)`);
    const fault = settings.faults?.[method];
    if (!fault) return;
    const first = (fault.afterCalls ?? 0) + 1;
    const last = first + (fault.times ?? Number.POSITIVE_INFINITY) - 1;
    if (callNumber >= first && callNumber <= last) {
      throw new FakeProviderError(
        fault.error,
        `Injected ${fault.error} fault in fake ${method} (call ${callNumber})`,
        {
          method,
          callNumber,
          injected: true,
        },
      );
    }
  }

  function notFound(kind: string, id: string): FakeProviderError {
    return new FakeProviderError('not-found', `Fake ${kind} '${id}' does not exist`, { id });
  }

  async function removeSnapshot(id: string): Promise<void> {
    await rm(join(snapshotsDir, id), { recursive: true, force: true });
    await mutate((state) => {
      delete state.snapshots[id];
    });
  }

  return {
    id: 'fake',
    defaultQuiesce: 'none',
    supportedQuiesce: { none: true, fsfreeze: true, stop: true },
    permissions: [],

    async locate(dataDir: string): Promise<Volume[]> {
      await enter('locate', dataDir);
      const path = resolve(dataDir);
      const info = await stat(path).catch(() => undefined);
      if (!info?.isDirectory()) {
        throw new DssnapError(
          'NOT_A_DATA_DIR',
          `DATA_DIR '${dataDir}' does not exist or is not a directory`,
          {
            details: { dataDir },
          },
        );
      }
      const mount = await findMount(path);
      const nested = await Promise.all(
        (settings.nestedVolumes ?? []).map(async (nestedPath) => {
          const nestedMount = await findMount(resolve(nestedPath));
          return {
            id: `fake:${resolve(nestedPath)}`,
            mountPoint: resolve(nestedPath),
            relativePath: '',
            fsType: nestedMount.fsType,
            device: nestedMount.device,
          };
        }),
      );
      return [
        {
          id: `fake:${path}`,
          mountPoint: path,
          relativePath: '',
          fsType: mount.fsType,
          device: mount.device,
        },
        ...nested,
      ];
    },

    async createSnapshots(volumes: readonly Volume[], tags: Tags): Promise<Snapshot[]> {
      await enter('createSnapshots', volumes.map((volume) => volume.id).join(','));
      const created: Snapshot[] = [];
      try {
        for (const volume of volumes) {
          const createdAt = now();
          // The record is written before the copy: a kill during the copy leaves a findable orphan.
          const snapshot = await mutate((state) => {
            const id = `fake-snap-${state.nextId++}`;
            const directory = join(snapshotsDir, id);
            const made: Snapshot = {
              id,
              provider: 'fake',
              volumeId: volume.id,
              createdAt,
              tags: ownedTags(tags, 'snapshot', createdAt),
              attributes: { directory },
            };
            state.snapshots[id] = { snapshot: made, directory, polls: 0 };
            return made;
          });
          created.push(snapshot);
          const directory = join(snapshotsDir, snapshot.id);
          await mkdir(directory, { recursive: true });
          await run('cp', [
            '-a',
            '--reflink=auto',
            `${join(volume.mountPoint, volume.relativePath)}/.`,
            directory,
          ]);
        }
      } catch (error) {
        // Contract: on a partial failure, delete what was created before throwing.
        for (const snapshot of created) await removeSnapshot(snapshot.id);
        throw error;
      }
      return created;
    },

    async progress(snapshot: Snapshot): Promise<SnapshotProgress> {
      await enter('progress', snapshot.id);
      const polls = await mutate((state) => {
        const record = state.snapshots[snapshot.id];
        if (!record) return undefined;
        record.polls += 1;
        return record.polls;
      });
      if (polls === undefined) throw notFound('snapshot', snapshot.id);
      if (settings.progressFailure !== undefined)
        return { state: 'failed', reason: settings.progressFailure };
      if (polls <= pendingPolls)
        return { state: 'pending', percent: Math.floor((100 * (polls - 1)) / pendingPolls) };
      return { state: 'ready' };
    },

    async expose(snapshot: Snapshot, tags: Tags): Promise<Exposure> {
      await enter('expose', snapshot.id);
      const exposure = await mutate((state) => {
        const record = state.snapshots[snapshot.id];
        if (!record) return undefined;
        const id = `fake-exp-${state.nextId++}`;
        const made: Exposure = { snapshotId: snapshot.id, directory: record.directory, resources: [id] };
        state.exposures[id] = { exposure: made, tags: ownedTags(tags, 'exposure'), createdAt: now() };
        return made;
      });
      if (!exposure) throw notFound('snapshot', snapshot.id);
      return exposure;
    },

    /** A `checkExposure` fault plays a snapshot that died under the copy (an overflowed LVM snapshot). */
    async checkExposure(exposure: Exposure): Promise<void> {
      await enter('checkExposure', exposure.snapshotId);
      const state = await readFakeState(stateDir);
      if (!state.snapshots[exposure.snapshotId]) throw notFound('snapshot', exposure.snapshotId);
    },

    async ensureReleased(exposure: Exposure): Promise<void> {
      await enter('ensureReleased', exposure.resources.join(','));
      await mutate((state) => {
        for (const id of exposure.resources) delete state.exposures[id];
      });
    },

    async ensureDeleted(snapshot: Snapshot): Promise<void> {
      await enter('ensureDeleted', snapshot.id);
      await removeSnapshot(snapshot.id);
    },

    async retain(snapshot: Snapshot, tags: Tags): Promise<Snapshot> {
      await enter('retain', snapshot.id);
      const updated = await mutate((state) => {
        const record = state.snapshots[snapshot.id];
        if (!record) return undefined;
        record.snapshot = {
          ...record.snapshot,
          tags: { ...record.snapshot.tags, ...tags, [TagKey.retain]: 'true' },
        };
        return record.snapshot;
      });
      if (!updated) throw notFound('snapshot', snapshot.id);
      return updated;
    },

    async list(selector): Promise<Snapshot[]> {
      await enter('list');
      const state = await readFakeState(stateDir);
      const matching = Object.values(state.snapshots)
        .map((record) => record.snapshot)
        .filter((snapshot) => matchesSelector(snapshot.tags, selector));
      return newestFirst(matching);
    },

    async orphans(selector): Promise<OwnedResource[]> {
      await enter('orphans');
      const state = await readFakeState(stateDir);
      const anyRetention = { ...selector, retained: undefined };
      const snapshots: OwnedResource[] = newestFirst(
        Object.values(state.snapshots).map((record) => record.snapshot),
      )
        .filter((snapshot) => !isRetained(snapshot.tags) && matchesSelector(snapshot.tags, anyRetention))
        .map((snapshot) => ({
          kind: 'snapshot',
          id: snapshot.id,
          tags: snapshot.tags,
          attributes: snapshot.attributes ?? {},
        }));
      const exposures: OwnedResource[] = Object.entries(state.exposures)
        .filter(([, record]) => matchesSelector(record.tags, anyRetention))
        .map(([id, record]) => ({
          kind: 'exposure',
          id,
          tags: record.tags,
          attributes: { snapshotId: record.exposure.snapshotId },
        }));
      return [...exposures, ...snapshots];
    },

    isNotFound(error: unknown): boolean {
      return error instanceof FakeProviderError && error.kind === 'not-found';
    },

    isPermanent(error: unknown): boolean {
      return !(error instanceof FakeProviderError && error.kind === 'transient');
    },
  };
}

function now(): string {
  return new Date().toISOString();
}

function emptyState(): FakeState {
  return { version: 1, nextId: 1, snapshots: {}, exposures: {}, calls: [] };
}

// Calls in one process (several providers on one stateDir, Promise.all of polls) are serialised per
// state file so no read-modify-write loses an update; the write is atomic (temp file + rename).
const queues = new Map<string, Promise<unknown>>();

function mutateState<R>(stateDir: string, change: (state: FakeState) => R): Promise<R> {
  const path = fakeStatePath(stateDir);
  const previous = queues.get(path) ?? Promise.resolve();
  const next = previous.then(async () => {
    const state = await readFakeState(stateDir);
    const result = change(state);
    const temp = `${path}.${process.pid}.tmp`;
    await writeFile(temp, `${JSON.stringify(state, null, 2)}\n`);
    await rename(temp, path);
    return result;
  });
  queues.set(
    path,
    next.catch(() => undefined),
  );
  return next;
}
