/**
 * A throw-away PostgreSQL cluster for Govern tests: `initdb` + `pg_ctl` run as the `postgres` user
 * (initdb refuses root) in a temp dir, listening on 127.0.0.1 on a free port, password (scram)
 * authentication over TCP. Always `stop()` it (afterAll): it kills the server and removes the files.
 */
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/host/exec.js';
import { requireRoot } from './require-root.js';

export interface PostgresCluster {
  host: string;
  port: number;
  /** The superuser `postgres`'s password. */
  password: string;
  /** Run SQL as the superuser (or `user`/`password`) in `database`; returns psql's unaligned output. */
  sql(sql: string, options?: { database?: string; user?: string; password?: string }): Promise<string>;
  /** Create a role with a password and a database it owns. */
  createDatabase(name: string, owner: string, ownerPassword: string): Promise<void>;
  stop(): Promise<void>;
}

const binDirs = ['/usr/lib/postgresql/15/bin', '/usr/local/bin', '/usr/bin'];

function pgTool(name: string): string {
  for (const dir of binDirs) if (existsSync(join(dir, name))) return join(dir, name);
  throw new Error(
    `This test needs PostgreSQL's ${name} (apt-get install postgresql); looked in ${binDirs.join(', ')}`,
  );
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Start a cluster; returns when it accepts connections. Throws (never skips) when PostgreSQL is missing. */
export async function startPostgres(): Promise<PostgresCluster> {
  requireRoot();
  const initdb = pgTool('initdb');
  const pgCtl = pgTool('pg_ctl');
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
  const dir = await mkdtemp(join(tmpdir(), 'dssnap-pg-cluster-'));
  await chmod(dir, 0o755);
  await chown(dir, uid, gid);
  const data = join(dir, 'data');
  const socket = join(dir, 'socket');
  await mkdir(socket);
  await chown(socket, uid, gid);
  const password = `pg-${Math.random().toString(36).slice(2)}`;
  const pwfile = join(dir, 'pwfile');
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  await chown(pwfile, uid, gid);
  const asPostgres = (file: string, args: string[]) =>
    run('runuser', ['-u', 'postgres', '--', file, ...args], { cwd: dir, timeoutMs: 120_000 });
  await asPostgres(initdb, [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    `--pwfile=${pwfile}`,
    '-E',
    'UTF8',
    '--locale=C',
  ]);
  const port = await freePort();
  const host = '127.0.0.1';
  await asPostgres(pgCtl, [
    '-D',
    data,
    '-l',
    join(dir, 'server.log'),
    '-o',
    `-p ${port} -c listen_addresses=${host} -c unix_socket_directories=${socket} -c fsync=off`,
    '-w',
    '-t',
    '60',
    'start',
  ]);
  const sql: PostgresCluster['sql'] = async (text, options = {}) => {
    const { stdout } = await run(
      'psql',
      [
        '-X',
        '-q',
        '-A',
        '-t',
        '-v',
        'ON_ERROR_STOP=1',
        '-h',
        host,
        '-p',
        String(port),
        '-U',
        options.user ?? 'postgres',
        '-d',
        options.database ?? 'postgres',
        '-c',
        text,
      ],
      { env: { PGPASSWORD: options.password ?? password } },
    );
    return stdout.trim();
  };
  return {
    host,
    port,
    password,
    sql,
    createDatabase: async (name, owner, ownerPassword) => {
      await sql(`create role "${owner}" login password '${ownerPassword.replaceAll("'", "''")}'`);
      await sql(`create database "${name}" owner "${owner}"`);
    },
    stop: async () => {
      await asPostgres(pgCtl, ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
