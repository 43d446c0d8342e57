import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSampleTree } from '../../test/support/tree-compare.js';
import { createGeneration } from '../copy/rsync-generations.js';
import { createArchive } from '../copy/tar-archive.js';
import {
  compareEntries,
  comparePaths,
  type IndexEntry,
  type IndexStats,
  readIndex,
  walkArchive,
  walkTree,
  writeIndex,
} from './hashes.js';

async function collect(entries: AsyncIterable<IndexEntry>): Promise<IndexEntry[]> {
  const result: IndexEntry[] = [];
  for await (const entry of entries) result.push(entry);
  return result;
}

describe('file index', () => {
  let work: string;
  let source: string;
  let backups: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'dssnap-hashes-'));
    source = join(work, 'source');
    backups = join(work, 'backups');
    await buildSampleTree(source);
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('walks a tree in the order tar --sort=name writes it, with the same hashes', async () => {
    const archive = await createArchive({
      source,
      destination: backups,
      backupId: 'a1',
      compression: 'zstd',
      excludes: [],
    });

    const walked = await collect(walkTree(source));
    const read = await collect(walkArchive(archive.location));

    const sockets = walked.filter((e) => e.t === 'o' && !read.some((r) => r.p === e.p));
    expect(read.map((e) => e.p)).toEqual(walked.filter((e) => !sockets.includes(e)).map((e) => e.p));
    const differences = await compareEntries(
      (async function* () {
        yield* walked;
      })(),
      (async function* () {
        yield* read;
      })(),
    );
    expect(differences.changed).toEqual([]);
    expect(read.find((e) => e.p === 'data/blob.bin')!.h).toBe(walked.find((e) => e.p === 'data/blob.bin')!.h);
    expect(read.filter((e) => e.hl !== undefined).map((e) => e.p)).toEqual([
      'data/hard-link.txt',
      'data/original.txt',
    ]);
  });

  it('round-trips through an index file', async () => {
    const path = join(work, 'round-trip.files.jsonl.gz');
    const walked = await collect(walkTree(source));

    const count = await writeIndex(path, walkTree(source));

    expect(count).toBe(walked.length);
    expect(await collect(readIndex(path))).toEqual(walked);
  });

  it('reuses the previous hash of files rsync hard-linked, and hashes only what changed', async () => {
    await createGeneration({ source, destination: backups, backupId: 'g1', excludes: [] });
    const firstIndex = join(work, 'g1.files.jsonl.gz');
    let first: IndexStats | undefined;
    await writeIndex(firstIndex, walkTree(join(backups, 'g1'), { onStats: (s) => (first = s) }));
    await writeFile(join(source, 'config/general-settings.json'), '{"dssnap": false}\n');
    await createGeneration({
      source,
      destination: backups,
      backupId: 'g2',
      previousBackupId: 'g1',
      excludes: [],
    });

    let second: IndexStats | undefined;
    const entries = await collect(
      walkTree(join(backups, 'g2'), { previous: readIndex(firstIndex), onStats: (s) => (second = s) }),
    );

    expect(first!.hashedFiles).toBe(first!.files);
    expect(second!.files).toBe(first!.files);
    expect(second!.hashedFiles).toBe(1);
    expect(second!.reusedFiles).toBe(first!.files - 1);
    const fresh = await collect(walkTree(join(backups, 'g2')));
    expect(entries.map((e) => e.h)).toEqual(fresh.map((e) => e.h));
  });

  it('finds missing, extra and changed files against an index', async () => {
    const copy = join(backups, 'g1');
    const index = join(work, 'g1.files.jsonl.gz');
    const blob = await open(join(copy, 'data/blob.bin'), 'r+');
    await blob.write(Buffer.from([0xff]), 0, 1, 1000);
    await blob.close();
    await rm(join(copy, 'bin/dss'));
    await writeFile(join(copy, 'config/extra.json'), '{}\n');

    const differences = await compareEntries(readIndex(index), walkTree(copy));

    expect(differences.missing).toEqual(['bin/dss']);
    expect(differences.extra).toEqual(['config/extra.json']);
    expect(differences.changed).toEqual([{ path: 'data/blob.bin', kinds: ['content'] }]);
  });

  it('refuses a truncated archive and a damaged index', async () => {
    const archive = join(backups, 'a1.tar.zst');
    const damaged = join(work, 'damaged.tar.zst');
    await writeFile(
      damaged,
      (await readFile(archive)).subarray(0, Math.floor((await stat(archive)).size / 2)),
    );
    const index = join(work, 'damaged.files.jsonl.gz');
    await writeFile(index, 'not gzip');

    await expect(collect(walkArchive(damaged))).rejects.toMatchObject({ code: 'BACKUP_INVALID' });
    await expect(collect(readIndex(index))).rejects.toMatchObject({ code: 'BACKUP_INVALID' });
    await expect(collect(readIndex(join(work, 'none.gz')))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('detects a flipped byte inside an archive member', async () => {
    const plain = join(work, 'plain.tar');
    await createArchive({ source, destination: work, backupId: 'p1', compression: 'gzip', excludes: [] });
    await rm(plain, { force: true });
    const archive = join(work, 'p1.tar.gz');
    const expected = await collect(walkArchive(archive));
    // Uncompressed copy, one byte of file data flipped (the checksum covers headers only).
    const { run } = await import('../host/exec.js');
    await run('sh', ['-c', `gzip -dc '${archive}' > '${plain}'`]);
    const raw = await readFile(plain);
    const offset = raw.indexOf(Buffer.from('hard-linked content'));
    raw[offset] = raw[offset]! ^ 0x01;
    await writeFile(plain, raw);

    const differences = await compareEntries(
      (async function* () {
        yield* expected;
      })(),
      walkArchive(plain),
    );

    expect(differences.changed.map((c) => c.path)).toEqual(['config/third-link.txt']);
  });
});

describe('comparePaths', () => {
  it.each([
    ['.', 'a', -1],
    ['a', 'a/b', -1],
    ['a/z', 'a-b', -1],
    ['a-b', 'a/z', 1],
    ['B', 'a', -1],
    ['é', 'z', 1],
  ])('%s vs %s', (a, b, sign) => {
    expect(Math.sign(comparePaths(a, b))).toBe(sign);
  });
});
