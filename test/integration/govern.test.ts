/**
 * Govern nodes: DATA_DIR and the PostgreSQL database as a matched pair, with a real PostgreSQL server
 * started by the test (initdb/pg_ctl on a loopback port, password authentication). The dump starts
 * right after the snapshot instant and is stored with the backup; a restore puts both back (refusing a
 * non-empty database unless --clean); verify checks the dump; the password never reaches a log line,
 * an argument list or an error message; an unreachable database is refused before anything changes.
 */
import { chmod, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { catalogDir, type Manifest } from '../../src/catalog/manifest.js';
import { resolveOptions } from '../../src/config.js';
import { stopDss } from '../../src/dss/control.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { leftoverJournals } from '../../src/procedure/journal.js';
import { restoreOptionsSchema } from '../../src/restore/options.js';
import { runRestore } from '../../src/restore/restore.js';
import { dssnap } from '../support/cli.js';
import { createDssHost, type DssHost } from '../support/dss-host.js';
import { type PostgresCluster, startPostgres } from '../support/postgres.js';

const log = silentLogger();
const password = 'gv-S3cret:with\\odd chars';

describe('Govern node: DATA_DIR and PostgreSQL as a pair', () => {
  let pg: PostgresCluster;
  let host: DssHost;
  let env: Record<string, string>;
  let cold: Manifest;

  const governSql = (sql: string, database = 'govern') => pg.sql(sql, { database, user: 'govern', password });
  const content = async () => [
    await governSql("select string_agg(id || ':' || name, ',' order by id) from blueprints"),
    await governSql('select count(*) from artifacts').catch(() => 'no artifacts table'),
  ];

  beforeAll(async () => {
    pg = await startPostgres();
    await pg.createDatabase('govern', 'govern', password);
    await pg.createDatabase('govern_empty', 'govern_restore', password);
    host = await createDssHost({ storage: 'plain', generate: { nodeType: 'govern' } });
    // Govern's own settings: the database, its password encrypted (so dssnap needs it from us).
    await writeFile(
      join(host.dataDir, 'config/dip.properties'),
      `psql.jdbc.url=jdbc:postgresql://127.0.0.1:${pg.port}/govern\npsql.jdbc.user=govern\npsql.jdbc.password=e:AES:opaque\n`,
    );
    await governSql(
      "create table blueprints(id int primary key, name text); insert into blueprints values (1, 'risk'), (2, 'model review');" +
        ' create table artifacts(id serial primary key, blueprint int references blueprints(id), body jsonb);' +
        ` insert into artifacts(blueprint, body) select 1 + g % 2, jsonb_build_object('n', g) from generate_series(1, 500) g;`,
    );
    env = { DSSNAP_GOVERN_DB_PASSWORD: password };
  });
  afterAll(async () => {
    await host?.dispose();
    await pg?.stop();
  });

  it('dumps the database during a cold backup, stored with the copy and recorded in the manifest', async () => {
    const result = await runBackup(host.options({ mode: 'cold', force: true }), { log, env });
    await stopDss(host.info, { log });

    cold = result.manifest;
    expect(cold.governDb).toMatchObject({
      database: `govern@127.0.0.1:${pg.port}/govern`,
      location: join(host.destination, `${cold.id}.govern.pgdump`),
      format: 'custom',
      serverVersion: expect.stringMatching(/^15\./),
    });
    expect(cold.governDb!.bytes).toBeGreaterThan(1000);
    expect(await host.destinationEntries()).toEqual([cold.id, `${cold.id}.govern.pgdump`]);
  });

  it('starts the dump right after the snapshot instant in snapshot mode', async () => {
    const result = await runBackup(host.options({ mode: 'snapshot', provider: 'fake', quiesce: 'none' }), {
      log,
      env,
    });

    const kinds = result.manifest.steps.map((s) => s.kind);
    expect(kinds.indexOf('govern-dump')).toBeGreaterThan(kinds.indexOf('create-snapshots'));
    expect(result.manifest.governDb!.lagMs).toBeLessThan(1000);
    await rm(join(host.destination, result.backupId), { recursive: true, force: true });
    await rm(join(catalogDir(host.destination), `${result.backupId}.json`));
  });

  it('never logs the password, nor puts it in an error', async () => {
    const logFile = join(host.stateDir, 'debug.log');
    const debugLog = createLogger({ format: 'json', level: 'debug', destination: logFile });
    const bad = runBackup(host.options({ mode: 'cold', force: true }), {
      log: debugLog,
      env: { DSSNAP_GOVERN_DB_PASSWORD: `${password}-wrong` },
    });

    await expect(bad).rejects.toMatchObject({ code: 'DATABASE_UNREACHABLE', exitCode: 5 });
    await expect(bad).rejects.toThrow(/password authentication failed for user "govern"/);
    await expect(bad).rejects.not.toThrow(password);
    const cliRun = await dssnap(
      [
        'backup',
        '--data-dir',
        host.dataDir,
        '--to',
        host.destination,
        '--state-dir',
        host.stateDir,
        '--mode',
        'cold',
        '--force',
        '--log-level',
        'debug',
      ],
      { env: { ...env, DSSNAP_LOG_LEVEL: 'debug' } },
    );
    expect(cliRun.exitCode).toBe(0);
    await stopDss(host.info, { log });
    for (const text of [await readFile(logFile, 'utf8'), cliRun.stdout, cliRun.stderr]) {
      expect(text).not.toContain(password);
      expect(text).not.toContain('gv-S3cret');
    }
    expect(cliRun.stderr).toContain('Database dump finished');
  });

  it('refuses a backup when the database does not answer, changing nothing', async () => {
    const before = await host.destinationEntries();

    const result = await dssnap(
      [
        'backup',
        '--data-dir',
        host.dataDir,
        '--to',
        host.destination,
        '--state-dir',
        host.stateDir,
        '--mode',
        'cold',
        '--force',
        '--govern-db',
        `postgresql://govern@127.0.0.1:${pg.port + 1}/govern`,
      ],
      { env },
    );

    expect(result.exitCode).toBe(5);
    expect(result.stderr).toMatch(/Cannot connect to the Govern database govern@127\.0\.0\.1:\d+\/govern/);
    expect(await host.destinationEntries()).toEqual(before);
    expect(await host.dssState()).toBe('stopped');
  });

  it('restores DATA_DIR and the database together; a non-empty database only with --clean', async () => {
    const original = await content();
    await governSql("drop table artifacts; update blueprints set name = 'tampered'");
    await writeFile(join(host.dataDir, 'config/after.json'), '{}\n');
    const options = (overrides: Record<string, unknown>) =>
      resolveOptions(restoreOptionsSchema, {
        flags: {
          backupId: cold.id,
          to: host.destination,
          dataDir: host.dataDir,
          stateDir: host.stateDir,
          start: false,
          ...overrides,
        },
      });

    const refused = runRestore(options({}), { log, env });

    await expect(refused).rejects.toMatchObject({ code: 'DATABASE_NOT_EMPTY', exitCode: 5 });
    expect(await content()).not.toEqual(original);

    const result = await runRestore(options({ clean: true }), { log, env });

    expect(result.database).toMatchObject({ database: `govern@127.0.0.1:${pg.port}/govern`, restored: true });
    expect(result.database!.safetyDump).toMatch(/\.before-restore-.*\.govern\.pgdump$/);
    expect(await content()).toEqual(original);
    await expect(readFile(join(host.dataDir, 'config/after.json'))).rejects.toThrow(/ENOENT/);
  });

  it('restores into an empty database given with --govern-db and a password file', async () => {
    const passwordFile = join(host.stateDir, 'govern.password');
    await writeFile(passwordFile, `${password}\n`);
    await chmod(passwordFile, 0o600);

    const result = await runRestore(
      resolveOptions(restoreOptionsSchema, {
        flags: {
          backupId: cold.id,
          to: host.destination,
          dataDir: host.dataDir,
          stateDir: host.stateDir,
          start: false,
          governDb: `postgresql://govern_restore@127.0.0.1:${pg.port}/govern_empty`,
          governDbPasswordFile: passwordFile,
        },
      }),
      { log, env: {} },
    );

    expect(result.database!.safetyDump).toBeUndefined();
    expect(await pg.sql('select count(*) from artifacts', { database: 'govern_empty' })).toBe('500');
  });

  it('refuses a restore when the target database does not answer: exit 5, nothing changed', async () => {
    const dataBefore = await readdir(host.dataDir);
    const parentBefore = await readdir(dirname(host.dataDir));
    const databaseBefore = await content();

    const result = await dssnap(
      [
        'restore',
        cold.id,
        '--to',
        host.destination,
        '--data-dir',
        host.dataDir,
        '--state-dir',
        host.stateDir,
        '--force',
        '--no-start',
        '--govern-db',
        `postgresql://govern@127.0.0.1:${pg.port + 1}/govern`,
      ],
      { env },
    );

    expect(result.exitCode).toBe(5);
    expect(result.stderr).toMatch(/Cannot connect to the Govern database govern@127\.0\.0\.1:\d+\/govern/);
    expect(result.stderr).not.toContain(password);
    expect(await readdir(host.dataDir)).toEqual(dataBefore);
    expect(await readdir(dirname(host.dataDir))).toEqual(parentBefore);
    expect(await content()).toEqual(databaseBefore);
    expect(leftoverJournals(host.stateDir)).toEqual([]);
  });

  it('verifies the dump with pg_restore --list, and reports a Govern backup without it as incomplete', async () => {
    const ok = await dssnap(['verify', cold.id, '--to', host.destination, '--state-dir', host.stateDir]);
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toMatch(/database dump readable \(\d+ entries\)/);

    const manifestPath = join(catalogDir(host.destination), `${cold.id}.json`);
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
    const { governDb: _dump, ...withoutDump } = manifest;
    await writeFile(manifestPath, JSON.stringify(withoutDump));
    const incomplete = await dssnap([
      'verify',
      cold.id,
      '--to',
      host.destination,
      '--state-dir',
      host.stateDir,
    ]);
    await writeFile(manifestPath, JSON.stringify(manifest));

    expect(incomplete.exitCode).toBe(1);
    expect(incomplete.stdout).toMatch(/INCOMPLETE/);
    expect(incomplete.stdout).toContain('without its PostgreSQL database dump');

    await writeFile(manifest.governDb!.location, 'PGDMP truncated');
    const damaged = await dssnap(['verify', cold.id, '--to', host.destination, '--state-dir', host.stateDir]);
    expect(damaged.exitCode).toBe(1);
    expect(damaged.stdout).toContain('does not match its recorded sha256');
  });
});
