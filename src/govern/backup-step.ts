/**
 * A Govern node's backup is a pair: DATA_DIR and the PostgreSQL database Govern keeps most of its state
 * in. The database must answer before anything changes (preflight), and its `pg_dump -Fc` starts right
 * after the snapshot instant (cold mode: right after DSS stopped), running alongside the copy, so that
 * the two are as close in time as the procedure allows. The dump is stored with the copy
 * (`DEST/<id>.govern.pgdump`; in the state dir's catalog for remote or snapshot-only backups) and
 * recorded in the manifest. A run whose dump fails fails as a whole: a Govern backup is never catalogued
 * without its database.
 */
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ManifestGovernDb } from '../catalog/manifest.js';
import type { Destination } from '../copy/destination.js';
import { DssnapError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Json } from '../procedure/journal.js';
import type { Runner } from '../procedure/runner.js';
import { describeDb, type GovernDb, governPasswordEnvVar, resolveGovernDb } from './connection.js';
import { checkDatabase, dumpDatabase } from './database.js';

export const governDumpStepKind = 'govern-dump';

export interface GovernDumpIntent {
  path: string;
}

export interface GovernBackupPlan {
  db: GovernDb;
  /** Where the dump goes. */
  path: string;
  serverVersion: string;
}

export interface GovernPreflightInput {
  nodeType: string;
  dataDir: string;
  backupId: string;
  destination?: Destination;
  stateDir: string;
  governDb?: string;
  governDbPasswordFile?: string;
  env: NodeJS.ProcessEnv;
  log: Logger;
}

/**
 * For a Govern node (or when --govern-db is given): the database to dump, checked to answer. Returns
 * undefined for other nodes. Changes nothing. Throws CONFIG_INVALID when a Govern node has no known
 * database, DATABASE_UNREACHABLE (exit 5) when it does not answer.
 */
export async function governPreflight(input: GovernPreflightInput): Promise<GovernBackupPlan | undefined> {
  if (input.nodeType !== 'govern' && !input.governDb) return undefined;
  const db = await resolveGovernDb({
    ...(input.governDb ? { connection: input.governDb } : { dataDir: input.dataDir }),
    ...(input.governDbPasswordFile ? { passwordFile: input.governDbPasswordFile } : {}),
    env: input.env,
  });
  if (!db) {
    throw new DssnapError(
      'CONFIG_INVALID',
      `${input.dataDir} is a Govern node, and its database is not known: no --govern-db and no psql.jdbc.url in config/dip.properties`,
      {
        hint: `Give --govern-db postgresql://USER@HOST:PORT/DATABASE, the password in ${governPasswordEnvVar} or --govern-db-password-file. A Govern backup without its database would be incomplete.`,
      },
    );
  }
  const serverVersion = await checkDatabase(db, { log: input.log });
  const name = `${input.backupId}.govern.pgdump`;
  const path =
    input.destination?.kind === 'local'
      ? join(input.destination.path, name)
      : join(input.stateDir, 'catalog', name);
  input.log.info({ database: describeDb(db), serverVersion, dump: path }, 'Govern database answers');
  return { db, path, serverVersion };
}

/**
 * Start the dump as a step running alongside the copy. `instant` is the `performance.now()` of the
 * snapshot instant (or of DSS's stop), to record the lag between the two halves of the pair. The
 * returned promise never rejects unhandled: await it before cataloguing. Its undo removes the dump.
 */
export function startGovernDump(
  runner: Runner,
  plan: GovernBackupPlan,
  instant: number,
  log: Logger,
): Promise<ManifestGovernDb> {
  const intent: GovernDumpIntent = { path: plan.path };
  const dumping = runner.step({
    kind: governDumpStepKind,
    title: `Dump the Govern database ${describeDb(plan.db)} (pg_dump -Fc) to ${plan.path}`,
    intent: intent as unknown as Json,
    run: async (signal) => {
      const lagMs = Math.round(performance.now() - instant);
      await mkdir(dirname(plan.path), { recursive: true });
      const dump = await dumpDatabase(plan.db, plan.path, { signal, log });
      return {
        database: describeDb(plan.db),
        location: dump.path,
        format: 'custom' as const,
        bytes: dump.bytes,
        sha256: dump.sha256,
        startedAt: dump.startedAt,
        lagMs,
        durationMs: dump.durationMs,
        serverVersion: dump.serverVersion,
      };
    },
    undo: () => removeGovernDump(intent),
    preview: () => ({
      database: describeDb(plan.db),
      location: plan.path,
      format: 'custom' as const,
      bytes: 0,
      sha256: '',
      startedAt: new Date().toISOString(),
      lagMs: 0,
      durationMs: 0,
      serverVersion: plan.serverVersion,
    }),
  });
  dumping.catch(() => undefined);
  return dumping;
}

/** Undo of the dump step (live and recovery): remove the dump and its partial. Idempotent. */
export async function removeGovernDump(intent: GovernDumpIntent): Promise<void> {
  await rm(intent.path, { force: true });
  await rm(`${intent.path}.partial`, { force: true });
}
