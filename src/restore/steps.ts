/**
 * The steps of a restore that change the world, and how each is undone — the same handlers for a live
 * failure (or SIGINT/SIGTERM) and for `dssnap recover` after a SIGKILL, so each works from the JSON the
 * journal holds. Undo order (newest first) puts things back: DSS stopped if the restore started it, the
 * database back, DATA_DIR renamed back, the staging removed, DSS started again if it ran before.
 */
import { existsSync } from 'node:fs';
import { startDss, stopDss } from '../dss/control.js';
import { inspectDataDir } from '../dss/layout.js';
import { type GovernDb, resolveGovernDb } from '../govern/connection.js';
import { emptyDatabase, restoreDump } from '../govern/database.js';
import { ensureUnmounted } from '../host/mounts.js';
import type { Logger } from '../log.js';
import type { Json } from '../procedure/journal.js';
import type { Exposure, Snapshot, SnapshotProvider } from '../provider/types.js';
import { copyTree } from './materialize.js';
import { emptyDirectory, ensureStagingRemoved, type SwapPaths, swapBack } from './target.js';

export const RestoreStep = {
  stage: 'stage-copy',
  expose: 'expose-snapshot',
  mount: 'mount-snapshot',
  stopDss: 'stop-dss',
  copyAside: 'copy-aside',
  swap: 'swap-data-dir',
  replace: 'replace-in-place',
  restoreDb: 'restore-database',
  startDss: 'start-dss',
} as const;
export type RestoreStepKind = (typeof RestoreStep)[keyof typeof RestoreStep];

export interface StageIntent {
  staging: string;
}
export interface DataDirIntent {
  dataDir: string;
}
export interface ReplaceIntent {
  target: string;
  /** The copy of the old content, when there was content. */
  aside?: string;
}
export interface RestoreDbIntent {
  /** The connection without its password. */
  db: Omit<GovernDb, 'password'>;
  passwordFile?: string;
  wasEmpty: boolean;
  /** The dump of the database taken before a --clean restore: what the undo restores. */
  safetyDump?: string;
}
export interface ExposeIntent {
  snapshot: Snapshot;
}
export interface MountIntent {
  mountPoint: string;
}

export interface RestoreUndoEntry {
  intent: Json;
  record: Json | undefined;
  done: boolean;
}
export type RestoreUndoHandler = (entry: RestoreUndoEntry) => Promise<void>;

export interface RestoreUndoContext {
  log: Logger;
  runId: string;
  provider: () => Promise<SnapshotProvider>;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  env: NodeJS.ProcessEnv;
}

function as<T>(value: Json | undefined): T {
  return value as unknown as T;
}

/** One handler per step kind; each is idempotent (recovery may run it on a step already undone). */
export function restoreUndoHandlers(ctx: RestoreUndoContext): Record<RestoreStepKind, RestoreUndoHandler> {
  return {
    [RestoreStep.stage]: async ({ intent }) => {
      await ensureStagingRemoved(as<StageIntent>(intent).staging);
    },
    [RestoreStep.expose]: async ({ intent, record }) => {
      const provider = await ctx.provider();
      if (record) {
        await provider.ensureReleased(as<{ exposure: Exposure }>(record).exposure);
        return;
      }
      const { snapshot } = as<ExposeIntent>(intent);
      for (const resource of (await provider.orphans({ runId: ctx.runId })).filter(
        (r) => r.kind === 'exposure',
      )) {
        await provider.ensureReleased({
          snapshotId: snapshot.id,
          resources: [resource.id],
          ...(resource.attributes ? { attributes: resource.attributes } : {}),
        });
      }
    },
    [RestoreStep.mount]: async ({ intent }) => {
      await ensureUnmounted(as<MountIntent>(intent).mountPoint);
    },
    [RestoreStep.stopDss]: async ({ intent }) => {
      // Runs after DATA_DIR was put back: starts the original DSS.
      const info = await inspectDataDir(as<DataDirIntent>(intent).dataDir);
      const result = await startDss(info, { timeoutMs: ctx.startTimeoutMs, log: ctx.log });
      if (result.changed) ctx.log.info({ dataDir: info.path }, 'DSS started again');
    },
    [RestoreStep.startDss]: async ({ intent }) => {
      // The restored DSS must be stopped before DATA_DIR is renamed back.
      const { dataDir } = as<DataDirIntent>(intent);
      if (!existsSync(dataDir)) return;
      const info = await inspectDataDir(dataDir).catch(() => undefined);
      if (info) await stopDss(info, { timeoutMs: ctx.stopTimeoutMs, log: ctx.log });
    },
    [RestoreStep.copyAside]: async ({ intent }) => {
      // The aside copy of a mount point is never deleted: it is what the undo puts back from.
      ctx.log.info({ aside: as<ReplaceIntent>(intent).aside }, 'The copy made before the restore is kept');
    },
    [RestoreStep.swap]: async ({ intent }) => {
      await swapBack(as<SwapPaths>(intent));
      ctx.log.info({ dataDir: as<SwapPaths>(intent).target }, 'DATA_DIR put back as it was');
    },
    [RestoreStep.replace]: async ({ intent }) => {
      const { target, aside } = as<ReplaceIntent>(intent);
      await emptyDirectory(target);
      if (aside && existsSync(aside)) await copyTree(aside, target);
      ctx.log.info({ dataDir: target }, 'DATA_DIR content put back as it was');
    },
    [RestoreStep.restoreDb]: async ({ intent }) => {
      const { db, passwordFile, wasEmpty, safetyDump } = as<RestoreDbIntent>(intent);
      const resolved = await resolveGovernDb({
        connection: `postgresql://${encodeURIComponent(db.user)}@${db.host.includes(':') ? `[${db.host}]` : db.host}:${db.port}/${encodeURIComponent(db.database)}`,
        ...(passwordFile ? { passwordFile } : {}),
        env: ctx.env,
      });
      const target = { ...resolved!, params: db.params, source: db.source };
      if (wasEmpty) await emptyDatabase(target, { log: ctx.log });
      else if (safetyDump) await restoreDump(target, safetyDump, { clean: true, log: ctx.log });
      ctx.log.info(
        { database: `${db.user}@${db.host}:${db.port}/${db.database}` },
        'Database put back as it was',
      );
    },
  };
}
