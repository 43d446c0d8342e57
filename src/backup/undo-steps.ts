/**
 * The steps of a backup that change the world, and how each is undone. The same handlers serve a live
 * run (failure, SIGINT/SIGTERM) and `dssnap recover` in another process after a SIGKILL, so every
 * undo works from the JSON the journal holds: the intent written before the step, the record after.
 */
import { rm } from 'node:fs/promises';
import { type HashStepIntent, hashStepKind, removeIndexFile } from '../catalog/hash-step.js';
import { parseDestination } from '../copy/destination.js';
import { runRemote } from '../copy/remote-shell.js';
import { removePartialGeneration } from '../copy/rsync-generations.js';
import { removePartialArchive } from '../copy/tar-archive.js';
import { startDss } from '../dss/control.js';
import type { DataDirInfo } from '../dss/layout.js';
import { type GovernDumpIntent, governDumpStepKind, removeGovernDump } from '../govern/backup-step.js';
import { ensureThawed } from '../host/fsfreeze.js';
import { ensureUnmounted } from '../host/mounts.js';
import type { Logger } from '../log.js';
import type { Json } from '../procedure/journal.js';
import type { Exposure, Snapshot, SnapshotProvider } from '../provider/types.js';

export const StepKind = {
  stopDss: 'stop-dss',
  freeze: 'fsfreeze',
  snapshot: 'create-snapshots',
  expose: 'expose-snapshot',
  mount: 'mount-snapshot',
  copy: 'copy',
  hashFiles: hashStepKind,
  governDump: governDumpStepKind,
} as const;
export type StepKindName = (typeof StepKind)[keyof typeof StepKind];

export interface StopDssIntent {
  dataDir: string;
}
export interface FreezeIntent {
  mountPoints: string[];
}
export interface SnapshotIntent {
  provider: string;
  runId: string;
  volumeIds: string[];
}
export interface SnapshotRecord {
  snapshots: Snapshot[];
}
export interface ExposeIntent {
  snapshot: Snapshot;
}
export interface ExposeRecord {
  exposure: Exposure;
}
export interface MountIntent {
  mountPoint: string;
  /** A block device, or for a bind mount the directory mounted. */
  device: string;
  fsType: string;
  bind?: boolean;
}
export interface CopyIntent {
  format: 'rsync' | 'tar';
  destination: string;
  backupId: string;
  sshCommand?: string;
}
export interface CopyRecord {
  /** The complete generation or archive: removed too when the run fails after the copy. */
  location: string;
}

/** What an undo handler gets: the journaled intent and record (absent when the step never finished). */
export interface UndoEntry {
  intent: Json;
  record: Json | undefined;
  done: boolean;
}
export type UndoHandler = (entry: UndoEntry) => Promise<void>;

export interface UndoContext {
  log: Logger;
  runId: string;
  dataDir: DataDirInfo;
  /** Loaded lazily: a run that failed before choosing a provider has none. */
  provider: () => Promise<SnapshotProvider>;
  startTimeoutMs: number;
}

function as<T>(value: Json | undefined): T {
  return value as unknown as T;
}

/** One handler per step kind. Each is idempotent: recovery may run it on a step already undone. */
export function undoHandlers(ctx: UndoContext): Record<StepKindName, UndoHandler> {
  return {
    [StepKind.stopDss]: async () => {
      const result = await startDss(ctx.dataDir, { timeoutMs: ctx.startTimeoutMs, log: ctx.log });
      if (result.changed) ctx.log.info({ dataDir: ctx.dataDir.path }, 'DSS started again');
    },
    [StepKind.freeze]: async ({ intent }) => {
      for (const mountPoint of as<FreezeIntent>(intent).mountPoints) await ensureThawed(mountPoint);
    },
    [StepKind.snapshot]: async ({ intent, record }) => {
      const provider = await ctx.provider();
      const snapshots = record
        ? as<SnapshotRecord>(record).snapshots
        : await snapshotsOfRun(provider, as<SnapshotIntent>(intent).runId);
      for (const snapshot of snapshots) {
        await provider.ensureDeleted(snapshot);
        ctx.log.info({ snapshotId: snapshot.id }, 'Snapshot deleted');
      }
    },
    [StepKind.expose]: async ({ intent, record }) => {
      const provider = await ctx.provider();
      if (record) {
        await provider.ensureReleased(as<ExposeRecord>(record).exposure);
        return;
      }
      // Killed inside expose: find its temporary resources by tag.
      const { snapshot } = as<ExposeIntent>(intent);
      const leftovers = (await provider.orphans({ runId: ctx.runId })).filter((r) => r.kind === 'exposure');
      for (const resource of leftovers) {
        await provider.ensureReleased({
          snapshotId: snapshot.id,
          resources: [resource.id],
          ...(resource.attributes ? { attributes: resource.attributes } : {}),
        });
      }
    },
    [StepKind.mount]: async ({ intent }) => {
      await ensureUnmounted(as<MountIntent>(intent).mountPoint);
    },
    [StepKind.copy]: async ({ intent, record }) => {
      const { format, destination, backupId, sshCommand } = as<CopyIntent>(intent);
      if (format === 'rsync')
        await removePartialGeneration(destination, backupId, sshCommand ? { sshCommand } : {});
      else await removePartialArchive(destination, backupId);
      // A run that fails after its copy (release, delete, manifest) leaves no uncatalogued backup.
      const location = record ? as<CopyRecord>(record).location : undefined;
      if (location) await removeCopy(location, sshCommand);
      ctx.log.info({ backupId }, 'Copy of the failed run removed');
    },
    [StepKind.hashFiles]: async ({ intent }) => {
      await removeIndexFile(as<HashStepIntent>(intent));
    },
    [StepKind.governDump]: async ({ intent }) => {
      await removeGovernDump(as<GovernDumpIntent>(intent));
    },
  };
}

async function removeCopy(location: string, sshCommand: string | undefined): Promise<void> {
  const parsed = parseDestination(location);
  if (parsed.kind === 'remote') {
    await runRemote(parsed.host, ['rm', '-rf', '--', parsed.path], sshCommand ? { sshCommand } : {});
  } else {
    await rm(parsed.path, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  }
}

async function snapshotsOfRun(provider: SnapshotProvider, runId: string): Promise<Snapshot[]> {
  const owned = await provider.orphans({ runId });
  return owned
    .filter((resource) => resource.kind === 'snapshot')
    .map((resource) => ({
      id: resource.id,
      provider: provider.id,
      volumeId: resource.attributes?.volumeId ?? '',
      createdAt: resource.tags['dssnap:created-at'] ?? '',
      tags: resource.tags,
      ...(resource.attributes ? { attributes: resource.attributes } : {}),
    }));
}
