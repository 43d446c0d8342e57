import { readFile, stat } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  connectionUri,
  describeDb,
  type GovernDb,
  parseConnectionString,
  parseDipProperties,
  pgEnvironment,
  resolveGovernDb,
} from './connection.js';

describe('parseConnectionString', () => {
  it.each([
    [
      'postgresql://govern@db.internal:5433/govern?sslmode=require',
      { host: 'db.internal', port: 5433, database: 'govern', user: 'govern', params: { sslmode: 'require' } },
    ],
    ['postgres://db/gov', { host: 'db', port: 5432, database: 'gov', user: 'postgres', params: {} }],
    ['postgresql://u@[::1]:6000/d', { host: '::1', port: 6000, database: 'd', user: 'u', params: {} }],
    [
      "host=10.0.0.5 port=5434 dbname='my db' user=gov sslmode=verify-full",
      { host: '10.0.0.5', port: 5434, database: 'my db', user: 'gov', params: { sslmode: 'verify-full' } },
    ],
  ])('%s', (text, expected) => {
    expect(parseConnectionString(text)).toEqual({ ...expected, source: '--govern-db' });
  });

  it.each([
    ['postgresql://govern:hunter2@db/govern', /contains a password/],
    ['postgresql://govern@db/govern?password=hunter2', /contains a password/],
    ['host=db dbname=g password=hunter2', /contains a password/],
    ['postgresql://govern@db', /no database name/],
    ['mysql://db/x', /not a postgresql:\/\/ URI/],
  ])('refuses %s without echoing it', (text, message) => {
    expect(() => parseConnectionString(text)).toThrow(message);
    expect(() => parseConnectionString(text)).not.toThrow(/hunter2/);
  });
});

describe('parseDipProperties', () => {
  it('reads the JDBC URL, the user, and a plain password; an encrypted one is left out', () => {
    const plain = parseDipProperties(
      'psql.jdbc.url=jdbc:postgresql://pg.local:5433/govern?ssl=true&sslmode=require\npsql.jdbc.user=gov\npsql.jdbc.password=plain\n',
      'dip.properties',
    );
    const encrypted = parseDipProperties(
      'psql.jdbc.url=jdbc:postgresql://pg.local/govern\npsql.jdbc.password=e:AES:abcd\n',
      'dip.properties',
    );

    expect(plain).toEqual({
      host: 'pg.local',
      port: 5433,
      database: 'govern',
      user: 'gov',
      params: { sslmode: 'require' },
      password: 'plain',
      source: 'config/dip.properties',
    });
    expect(encrypted!.password).toBeUndefined();
    expect(parseDipProperties('dku.registration.channel=x\n', 'dip.properties')).toBeUndefined();
  });
});

describe('resolveGovernDb', () => {
  it('takes the password from the environment, a file winning over it', async () => {
    const db = await resolveGovernDb({
      connection: 'postgresql://gov@db/govern',
      env: { DSSNAP_GOVERN_DB_PASSWORD: 'from-env' },
    });

    expect(db!.password).toBe('from-env');
  });
});

describe('connectionUri and describeDb', () => {
  const db: GovernDb = {
    host: 'db',
    port: 5432,
    database: 'govern',
    user: 'gov',
    params: { sslmode: 'require' },
    password: 'secret',
    source: '--govern-db',
  };

  it('never carry the password', () => {
    expect(connectionUri(db)).toBe('postgresql://gov@db:5432/govern?sslmode=require&application_name=dssnap');
    expect(describeDb(db)).toBe('gov@db:5432/govern');
  });

  it('hands the password over in a private pgpass file, escaped, removed by dispose', async () => {
    const pg = await pgEnvironment({ ...db, password: 'a:b\\c' });
    try {
      const file = pg.env.PGPASSFILE!;

      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect(await readFile(file, 'utf8')).toBe('db:5432:*:gov:a\\:b\\\\c\n');
      expect(pg.env.PGPASSWORD).toBe('');
    } finally {
      await pg.dispose();
    }
    await expect(stat(pg.env.PGPASSFILE!)).rejects.toThrow(/ENOENT/);
  });
});
