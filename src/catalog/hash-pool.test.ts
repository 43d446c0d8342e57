import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHashPool } from './hash-pool.js';
import { walkTree } from './hashes.js';

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

describe('hash pool', () => {
  let work: string;
  const files: { path: string; data: Buffer }[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'dssnap-hash-pool-'));
    // Empty, small, exactly one read buffer, and larger than one: the edges of the read loop.
    for (const size of [0, 1, 4095, 1024 * 1024, 3 * 1024 * 1024 + 7]) {
      const data = Buffer.alloc(size, size % 251);
      const path = join(work, `f${size}`);
      await writeFile(path, data);
      files.push({ path, data });
    }
    for (let i = 0; i < 300; i++) {
      const data = Buffer.from(`small file ${i}\n`);
      const path = join(work, `s${i}`);
      await writeFile(path, data);
      files.push({ path, data });
    }
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('hashes many files on its threads, each result matching its own file', async () => {
    const pool = createHashPool(3);

    const results = await Promise.all(files.map((f) => pool.hash(f.path, f.data.length)));
    await pool.close();

    expect(results.map((r) => r.hash)).toEqual(files.map((f) => sha256(f.data)));
    expect(results.map((r) => r.bytes)).toEqual(files.map((f) => f.data.length));
  });

  it('rejects an unreadable file with its error code, and the others still succeed', async () => {
    const pool = createHashPool(2);

    const missing = pool.hash(join(work, 'gone'), 10);
    const present = pool.hash(files[1]!.path, 1);

    await expect(missing).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(present).resolves.toEqual({ hash: sha256(files[1]!.data), bytes: 1 });
    await pool.close();
    await expect(pool.hash(files[1]!.path, 1)).rejects.toThrow(/closed/);
  });

  it('never keeps a process alive: a walk abandoned half-way lets node exit', async () => {
    const hashes = join(import.meta.dirname, '../../dist/src/catalog/hashes.js');
    expect(existsSync(hashes), `${hashes} is missing: npm run build first`).toBe(true);
    const script = `import { walkTree } from ${JSON.stringify(hashes)};
      const walk = walkTree(${JSON.stringify(work)}, { window: 4 })[Symbol.asyncIterator]();
      for (let i = 0; i < 10; i++) await walk.next();
      console.log('abandoned');`;

    const result = await execa(process.execPath, ['--input-type=module', '-e', script], {
      timeout: 20_000,
      reject: false,
    });

    expect(result.timedOut).toBe(false);
    expect(result).toMatchObject({ exitCode: 0, stdout: 'abandoned' });
  });

  it('gives the same index whatever the number of threads and the window', async () => {
    const collect = async (threads: number, window: number) => {
      const entries = [];
      for await (const entry of walkTree(work, { threads, window })) entries.push(entry);
      return entries;
    };

    const one = await collect(1, 1);
    const four = await collect(4, 1024);

    expect(four).toEqual(one);
    expect(one.filter((e) => e.t === 'f')).toHaveLength(files.length);
  });
});
