/**
 * What dssnap does to a Govern PostgreSQL database, with the PostgreSQL client tools: check it answers,
 * dump it (`pg_dump -Fc`), list a dump (`pg_restore --list`), tell whether it is empty, restore a dump
 * in one transaction, and empty it again. The password travels only through `pgEnvironment`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { DssnapError } from '../errors.js';
import { CommandError, lastLines, requireTool, run } from '../host/exec.js';
import type { Logger } from '../log.js';
import { connectionUri, describeDb, type GovernDb, pgEnvironment } from './connection.js';

export interface DumpResult {
  /** The complete dump file. */
  path: string;
  bytes: number;
  sha256: string;
  /** ISO-8601: when pg_dump started (its snapshot of the database is taken at start). */
  startedAt: string;
  durationMs: number;
  serverVersion: string;
}

export interface DbCallOptions {
  signal?: AbortSignal;
  log?: Logger;
}

/** The client tools, absolute paths; TOOL_MISSING names the Debian package. */
function tool(name: 'pg_dump' | 'pg_restore' | 'psql'): string {
  return requireTool(name, 'postgresql-client');
}

/**
 * Check that the database answers with these credentials; returns the server version. Changes nothing.
 * Throws DATABASE_UNREACHABLE (exit 5) with psql's reason — never the password.
 */
export async function checkDatabase(db: GovernDb, options: DbCallOptions = {}): Promise<string> {
  const output = await query(db, "select current_setting('server_version')", options).catch((error) => {
    throw unreachable(db, error);
  });
  return output.trim();
}

/**
 * Whether the database holds no table, view, sequence or function outside the system schemas.
 * Throws DATABASE_UNREACHABLE when it cannot be asked.
 */
export async function isDatabaseEmpty(db: GovernDb, options: DbCallOptions = {}): Promise<boolean> {
  const sql = `select (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%')
    + (select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%')`;
  const output = await query(db, sql, options).catch((error) => {
    throw unreachable(db, error);
  });
  return Number(output.trim()) === 0;
}

/**
 * `pg_dump -Fc` of the database into `path`, written under a temporary name and renamed when complete,
 * then flushed and hashed. Returns when the dump is complete. Throws DATABASE_ERROR with pg_dump's
 * output tail (a partial file is removed), INTERRUPTED when `signal` aborts.
 */
export async function dumpDatabase(
  db: GovernDb,
  path: string,
  options: DbCallOptions = {},
): Promise<DumpResult> {
  const partial = `${path}.partial`;
  const pg = await pgEnvironment(db);
  const startedAt = new Date();
  const started = performance.now();
  try {
    const serverVersion = await checkDatabase(db, options);
    options.log?.info({ database: describeDb(db), path }, 'Database dump started');
    await run(
      tool('pg_dump'),
      ['-Fc', '--no-password', `--file=${partial}`, `--dbname=${connectionUri(db)}`],
      {
        env: pg.env,
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
    const { bytes, sha256 } = await flushAndHash(partial);
    await rename(partial, path);
    const durationMs = Math.round(performance.now() - started);
    options.log?.info({ database: describeDb(db), path, bytes, durationMs }, 'Database dump finished');
    return { path, bytes, sha256, startedAt: startedAt.toISOString(), durationMs, serverVersion };
  } catch (error) {
    await rm(partial, { force: true });
    throw databaseError(db, 'pg_dump', error);
  } finally {
    await pg.dispose();
  }
}

/**
 * The table of contents of a custom-format dump (`pg_restore --list`): proves the file is a complete,
 * readable dump. Returns the number of entries. Needs no server. Throws BACKUP_INVALID otherwise.
 */
export async function listDump(path: string, options: DbCallOptions = {}): Promise<number> {
  try {
    const { stdout } = await run(tool('pg_restore'), ['--list', path], {
      env: { LC_ALL: 'C' },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return stdout.split('\n').filter((line) => line.trim() !== '' && !line.startsWith(';')).length;
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    throw new DssnapError(
      'BACKUP_INVALID',
      `The database dump ${path} is not readable: ${lastLines(error.stderr, 3)}`,
      {
        cause: error,
        hint: 'The dump is damaged or truncated: restore another backup (dssnap verify --all tells which are sound).',
        details: { path },
      },
    );
  }
}

/**
 * Restore a custom-format dump into the database with `pg_restore --single-transaction`: either all of
 * it is restored or nothing changes. `clean` drops the objects of the dump first (in the same
 * transaction). Objects are owned by the connecting user (`--no-owner --no-privileges`), so the
 * restore works when the original roles do not exist. Throws DATABASE_ERROR with pg_restore's tail.
 */
export async function restoreDump(
  db: GovernDb,
  path: string,
  options: DbCallOptions & { clean?: boolean } = {},
): Promise<void> {
  const pg = await pgEnvironment(db);
  try {
    await run(
      tool('pg_restore'),
      [
        '--no-password',
        '--single-transaction',
        '--exit-on-error',
        '--no-owner',
        '--no-privileges',
        ...(options.clean ? ['--clean', '--if-exists'] : []),
        `--dbname=${connectionUri(db)}`,
        path,
      ],
      { env: pg.env, ...(options.signal ? { signal: options.signal } : {}) },
    );
    options.log?.info(
      { database: describeDb(db), dump: path, clean: options.clean ?? false },
      'Database restored',
    );
  } catch (error) {
    throw databaseError(db, 'pg_restore', error);
  } finally {
    await pg.dispose();
  }
}

/**
 * Drop every schema but the system ones and recreate an empty `public`: the undo of a restore into a
 * database that was empty before. Idempotent. Throws DATABASE_ERROR.
 */
export async function emptyDatabase(db: GovernDb, options: DbCallOptions = {}): Promise<void> {
  const sql = `do $$ declare s record; begin
    for s in select nspname from pg_namespace where nspname not in ('pg_catalog', 'information_schema')
      and nspname not like 'pg\\_%' loop
      execute format('drop schema %I cascade', s.nspname);
    end loop;
    create schema public;
  end $$`;
  await query(db, sql, options).catch((error) => {
    throw databaseError(db, 'psql', error);
  });
}

async function query(db: GovernDb, sql: string, options: DbCallOptions): Promise<string> {
  const pg = await pgEnvironment(db);
  try {
    const { stdout } = await run(
      tool('psql'),
      [
        '--no-password',
        '-X',
        '-q',
        '-A',
        '-t',
        '-v',
        'ON_ERROR_STOP=1',
        `--dbname=${connectionUri(db)}`,
        '-c',
        sql,
      ],
      { env: pg.env, timeoutMs: 60_000, ...(options.signal ? { signal: options.signal } : {}) },
    );
    return stdout;
  } finally {
    await pg.dispose();
  }
}

async function flushAndHash(path: string): Promise<{ bytes: number; sha256: string }> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  return hashFile(path);
}

/** sha256 and size of a file, streamed. */
export async function hashFile(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

function unreachable(db: GovernDb, error: unknown): unknown {
  if (!(error instanceof CommandError)) return error;
  return new DssnapError(
    'DATABASE_UNREACHABLE',
    `Cannot connect to the Govern database ${describeDb(db)} (from ${db.source}): ${lastLines(error.stderr, 3) || `psql exited with code ${error.exitCode_}`}`,
    {
      cause: error,
      hint: `Check that PostgreSQL runs and accepts this user from this host, and the password (${'DSSNAP_GOVERN_DB_PASSWORD'} or --govern-db-password-file); give the database with --govern-db postgresql://USER@HOST:PORT/DATABASE.`,
      details: { database: describeDb(db) },
    },
  );
}

function databaseError(db: GovernDb, command: string, error: unknown): unknown {
  if (error instanceof DssnapError && !(error instanceof CommandError)) return error;
  if (!(error instanceof CommandError)) return error;
  if (error.isCanceled) {
    return new DssnapError('INTERRUPTED', `${command} on ${describeDb(db)} was interrupted`, {
      cause: error,
    });
  }
  return new DssnapError(
    'DATABASE_ERROR',
    `${command} failed on the Govern database ${describeDb(db)}: ${lastLines(error.stderr || error.stdout, 5) || `exit code ${error.exitCode_}`}`,
    {
      cause: error,
      hint:
        command === 'pg_dump'
          ? 'pg_dump must be at least as new as the server (apt-get install postgresql-client-<version>); check the user may read every table.'
          : 'Nothing was changed in the database (single transaction). Check the user owns the database and may create objects in it.',
      details: { database: describeDb(db), command, exitCode: error.exitCode_ },
    },
  );
}
