/**
 * The Govern node's PostgreSQL connection: from `--govern-db` (a `postgresql://` URI or libpq
 * `key=value` string) or, by default, from `DATA_DIR/config/dip.properties` (`psql.jdbc.url`, `.user`,
 * `.password`). The password comes from `DSSNAP_GOVERN_DB_PASSWORD`, a file (`--govern-db-password-file`)
 * or a plain dip.properties password — never from a flag — and reaches the PostgreSQL tools through a
 * private pgpass file (`PGPASSFILE`), so it appears in no argv, no log line, no error message.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DssnapError } from '../errors.js';

export interface GovernDb {
  host: string;
  port: number;
  database: string;
  user: string;
  /** Extra libpq parameters (`sslmode`…), never a password. */
  params: Readonly<Record<string, string>>;
  /** Never logged (the logger redacts `password`), never put in argv. */
  password?: string;
  /** Where the connection came from, for messages: `--govern-db`, `config/dip.properties`. */
  source: string;
}

export interface GovernDbSources {
  /** `--govern-db`: `postgresql://user@host:port/db?sslmode=require` or `host=… dbname=…`. */
  connection?: string;
  /** `--govern-db-password-file`. */
  passwordFile?: string;
  /** A DATA_DIR whose `config/dip.properties` gives the default connection. */
  dataDir?: string;
  /** Or the text of a dip.properties (read from a backup). */
  dipProperties?: string;
  env?: NodeJS.ProcessEnv;
}

/** The environment variable holding the Govern database password. */
export const governPasswordEnvVar = 'DSSNAP_GOVERN_DB_PASSWORD';

/**
 * Resolve the Govern database connection. Returns undefined when no source names one (no flag, no
 * `psql.jdbc.url` in dip.properties). Throws CONFIG_INVALID for a malformed connection string, a password
 * written in it, or an unreadable password file.
 */
export async function resolveGovernDb(sources: GovernDbSources): Promise<GovernDb | undefined> {
  const env = sources.env ?? process.env;
  let db: GovernDb | undefined;
  if (sources.connection) db = parseConnectionString(sources.connection);
  else if (sources.dipProperties !== undefined)
    db = parseDipProperties(sources.dipProperties, 'dip.properties');
  else if (sources.dataDir) db = await readDipProperties(join(sources.dataDir, 'config', 'dip.properties'));
  if (!db) return undefined;
  const fromFile = sources.passwordFile ? await readPasswordFile(sources.passwordFile) : undefined;
  const password = fromFile ?? (env[governPasswordEnvVar] || undefined) ?? db.password;
  const { password: _drop, ...rest } = db;
  return password === undefined ? rest : { ...rest, password };
}

/**
 * Parse a `postgresql://` / `postgres://` URI or a libpq `key=value` string. Pure. Throws CONFIG_INVALID
 * for anything else, and for a password written in it (it would show in `ps` and shell history) —
 * without echoing the string.
 */
export function parseConnectionString(text: string): GovernDb {
  const invalid = (problem: string): DssnapError =>
    new DssnapError('CONFIG_INVALID', `Invalid --govern-db: ${problem}`, {
      hint: `Write it as postgresql://USER@HOST:PORT/DATABASE (the password in ${governPasswordEnvVar} or --govern-db-password-file).`,
    });
  const passwordRefused = (): DssnapError =>
    new DssnapError('CONFIG_INVALID', 'Invalid --govern-db: it contains a password', {
      hint: `A password on the command line shows in ps and shell history: remove it and put it in ${governPasswordEnvVar} or in a file given with --govern-db-password-file.`,
    });
  const trimmed = text.trim();
  if (/^postgres(?:ql)?:\/\//i.test(trimmed)) {
    let url: URL;
    try {
      url = new URL(trimmed);
    } catch {
      throw invalid('not a valid URI');
    }
    if (url.password) throw passwordRefused();
    const params: Record<string, string> = {};
    for (const [key, value] of url.searchParams) {
      if (key === 'password') throw passwordRefused();
      params[key] = value;
    }
    const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
    if (!url.hostname) throw invalid('no host');
    if (!database) throw invalid('no database name (…/DATABASE)');
    return {
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port ? Number(url.port) : 5432,
      database,
      user: decodeURIComponent(url.username) || 'postgres',
      params,
      source: '--govern-db',
    };
  }
  if (/^\s*\w+\s*=/.test(trimmed)) {
    const pairs = parseKeyValues(trimmed);
    if ('password' in pairs) throw passwordRefused();
    const { host, port, dbname, user, ...params } = pairs;
    if (!host) throw invalid('no host=');
    if (!dbname) throw invalid('no dbname=');
    return {
      host,
      port: port ? Number(port) : 5432,
      database: dbname,
      user: user ?? 'postgres',
      params,
      source: '--govern-db',
    };
  }
  throw invalid('not a postgresql:// URI nor a key=value connection string');
}

/**
 * The connection DSS Govern uses, from its `dip.properties`. Returns undefined when the file or
 * `psql.jdbc.url` is absent. An encrypted password (`e:AES:…`) is not usable: the password must then
 * come from the environment or a file.
 */
export async function readDipProperties(path: string): Promise<GovernDb | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return parseDipProperties(text, path);
}

/** The connection in the text of a dip.properties (`path` names it in errors). Pure. */
export function parseDipProperties(text: string, path: string): GovernDb | undefined {
  const properties = parseProperties(text);
  const jdbc = properties['psql.jdbc.url'];
  if (!jdbc) return undefined;
  const match = /^jdbc:postgresql:\/\/([^/?]+)\/([^?]+)(?:\?(.*))?$/i.exec(jdbc.trim());
  if (!match) {
    throw new DssnapError('CONFIG_INVALID', `${path}: psql.jdbc.url is not a jdbc:postgresql:// URL`, {
      hint: 'Give the database with --govern-db postgresql://USER@HOST:PORT/DATABASE.',
      details: { path },
    });
  }
  const [hostPart, database, query] = [match[1]!, decodeURIComponent(match[2]!), match[3]];
  const hostMatch = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostPart.split(',')[0]!);
  const params: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(query ?? '')) {
    if (key === 'sslmode') params[key] = value;
  }
  const password = properties['psql.jdbc.password'];
  return {
    host: (hostMatch?.[1] ?? hostPart).replace(/^\[|\]$/g, ''),
    port: hostMatch?.[2] ? Number(hostMatch[2]) : 5432,
    database,
    user: properties['psql.jdbc.user'] ?? 'postgres',
    params,
    ...(password && !/^e:/.test(password) ? { password } : {}),
    source: 'config/dip.properties',
  };
}

/** `user@host:port/database`: how messages and manifests name the database. Never the password. */
export function describeDb(db: GovernDb): string {
  return `${db.user}@${db.host.includes(':') ? `[${db.host}]` : db.host}:${db.port}/${db.database}`;
}

/** The libpq URI the tools get as `--dbname`: no password in it. */
export function connectionUri(db: GovernDb, database = db.database): string {
  const host = db.host.includes(':') ? `[${db.host}]` : db.host;
  const query = new URLSearchParams({ ...db.params, application_name: 'dssnap' }).toString();
  return `postgresql://${encodeURIComponent(db.user)}@${host}:${db.port}/${encodeURIComponent(database)}?${query}`;
}

export interface PgEnvironment {
  /** Environment for the PostgreSQL tools: PGPASSFILE when there is a password, a connect timeout. */
  env: Record<string, string>;
  /** Remove the private pgpass file. Idempotent. */
  dispose(): Promise<void>;
}

/**
 * Environment for the child processes: the password in a pgpass file readable only by this user in a
 * private temp dir, so it is never in argv or in the child's environment. Always `dispose()` it.
 */
export async function pgEnvironment(db: GovernDb): Promise<PgEnvironment> {
  const env: Record<string, string> = {
    PGCONNECT_TIMEOUT: '10',
    PGAPPNAME: 'dssnap',
    LC_ALL: 'C',
  };
  // Without a password of ours, libpq uses the caller's ~/.pgpass, PGPASSWORD or peer/cert auth.
  if (db.password === undefined) return { env, dispose: async () => undefined };
  // A PGPASSWORD inherited from the caller would win over the file.
  env.PGPASSWORD = '';
  const dir = await mkdtemp(join(tmpdir(), `dssnap-pg-${randomBytes(3).toString('hex')}-`));
  await chmod(dir, 0o700);
  const file = join(dir, 'pgpass');
  const quote = (value: string): string => value.replaceAll('\\', '\\\\').replaceAll(':', '\\:');
  // `*` for the database: pg_restore --list and the emptiness check connect to the same server.
  await writeFile(file, `${quote(db.host)}:${db.port}:*:${quote(db.user)}:${quote(db.password)}\n`, {
    mode: 0o600,
  });
  env.PGPASSFILE = file;
  return { env, dispose: () => rm(dir, { recursive: true, force: true }) };
}

async function readPasswordFile(path: string): Promise<string> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new Error('not a regular file');
    const text = await readFile(path, 'utf8');
    return text.replace(/\r?\n$/, '');
  } catch (error) {
    throw new DssnapError(
      'CONFIG_INVALID',
      `Cannot read the Govern database password file ${path}: ${(error as Error).message}`,
      {
        hint: 'Give a file holding only the password, readable by root (mode 600).',
        details: { path },
      },
    );
  }
}

function parseProperties(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    const match = /^([^=:\s]+)\s*[=:]\s*(.*)$/.exec(line);
    if (match) result[match[1]!] = match[2]!.replace(/\\:/g, ':').replace(/\\=/g, '=');
  }
  return result;
}

/** libpq `key=value` pairs, values optionally single-quoted with backslash escapes. */
function parseKeyValues(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  const pattern = /(\w+)\s*=\s*(?:'((?:\\.|[^'\\])*)'|(\S+))/g;
  for (const match of text.matchAll(pattern)) {
    result[match[1]!] = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : match[3]!;
  }
  return result;
}
