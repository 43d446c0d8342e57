import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../../test/support/require-root.js';
import { buildSampleTree, compareTrees, formatDifferences } from '../../test/support/tree-compare.js';
import { run } from '../host/exec.js';
import { createGeneration } from './rsync-generations.js';
import { createArchive, extractArchive, removePartialArchive } from './tar-archive.js';

const excludes = ['/tmp/', '/caches/', '*.pyc'];

async function catching(promise: Promise<unknown>): Promise<unknown> {
  return promise.catch((thrown: unknown) => thrown);
}

describe('tar archives on a real tree', () => {
  let work: string;
  let source: string;
  let pycFiles: string[];

  beforeAll(async () => {
    requireRoot();
    work = await mkdtemp(join(tmpdir(), 'dssnap-tar-test-'));
    source = join(work, 'source');
    ({ pycFiles } = await buildSampleTree(source));
  });

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it.each([
    ['zstd', '.tar.zst'],
    ['gzip', '.tar.gz'],
  ] as const)(
    'a %s archive extracts to a tree identical to the source, without the excluded paths',
    async (compression, suffix) => {
      const dest = join(work, `dest-${compression}`);
      const target = join(work, `restored-${compression}`);

      const result = await createArchive({
        source,
        destination: dest,
        backupId: 'b1',
        compression,
        excludes,
      });
      await extractArchive(result.location, target);

      expect(result.location).toBe(join(dest, `b1${suffix}`));
      const differences = await compareTrees(source, target, { ignore: ['tmp', 'caches', ...pycFiles] });
      expect(formatDifferences(differences)).toBe('');
      expect(existsSync(join(target, 'tmp'))).toBe(false);
      expect(existsSync(join(target, 'projects/P1/tmp/kept.txt'))).toBe(true);
      expect(await readdir(dest)).toEqual([`b1${suffix}`]);
      expect(result.warnings).toEqual([]);
      expect(result.stats.transferredBytes).toBe((await stat(result.location)).size);
      expect(result.stats.totalBytes).toBeGreaterThan(256 * 1024);
    },
  );

  it('excludes exactly what rsync excludes for the same patterns', async () => {
    const tree = join(work, 'pattern-tree');
    const files = [
      'tmp/top.txt',
      'nested/tmp/kept.txt',
      'tmpx',
      'caches',
      'logs/a.log',
      'deep/logs/b.log',
      'deep/logs/sub/kept.log',
      'a/b/c/deep/gone.txt',
      'a/b/c/shallow/kept.txt',
      'x/cache/gone.bin',
      'cache/gone.bin',
      'name with space.pyc',
      // rsync reads [brackets] as a character class: it matches lib/s.txt, not itself.
      'lib/[brackets].txt',
      'lib/s.txt',
      'secret/only-this.key',
      'secret/kept.key',
    ];
    for (const file of files) {
      await mkdir(join(tree, file, '..'), { recursive: true });
      await writeFile(join(tree, file), file);
    }
    const patterns = [
      '/tmp/',
      '/caches/',
      'logs/*.log',
      '/a/**/deep',
      'cache/',
      '*.pyc',
      '/lib/[brackets].txt',
      '/secret/only-this.key',
    ];

    const generation = await createGeneration({
      source: tree,
      destination: join(work, 'pattern-rsync'),
      backupId: 'p',
      excludes: patterns,
    });
    const archive = await createArchive({
      source: tree,
      destination: join(work, 'pattern-tar'),
      backupId: 'p',
      compression: 'zstd',
      excludes: patterns,
    });
    await extractArchive(archive.location, join(work, 'pattern-restored'));

    expect(formatDifferences(await compareTrees(generation.location, join(work, 'pattern-restored')))).toBe(
      '',
    );
    const kept = (path: string): boolean => existsSync(join(work, 'pattern-restored', path));
    expect(files.filter(kept).sort()).toEqual(
      [
        'a/b/c/shallow/kept.txt',
        'caches',
        'deep/logs/sub/kept.log',
        'lib/[brackets].txt',
        'nested/tmp/kept.txt',
        'secret/kept.key',
        'tmpx',
      ].sort(),
    );
    expect(archive.stats.files).toBe(generation.stats.files);
  });

  it.each([
    ['zstd', 0],
    ['zstd', 20],
    ['gzip', 10],
    ['gzip', 2.5],
  ] as const)('refuses %s level %s, naming the valid range', async (compression, level) => {
    const error = await catching(
      createArchive({
        source,
        destination: join(work, 'levels'),
        backupId: 'l',
        compression,
        level,
        excludes,
      }),
    );

    expect(error).toMatchObject({
      code: 'USAGE',
      message: expect.stringMatching(/must be an integer from 1 to (19|9)/),
    });
  });

  it('refuses a remote destination, an existing archive and a missing archive to extract', async () => {
    const dest = join(work, 'dest-zstd');

    const remote = await catching(
      createArchive({ source, destination: 'host:/backups', backupId: 'r', compression: 'zstd', excludes }),
    );
    const existing = await catching(
      createArchive({ source, destination: dest, backupId: 'b1', compression: 'zstd', excludes }),
    );
    const missing = await catching(extractArchive(join(dest, 'nope.tar.zst'), join(work, 'nowhere')));

    expect(remote).toMatchObject({
      code: 'DESTINATION_INVALID',
      message: expect.stringContaining('local directory'),
    });
    expect(existing).toMatchObject({
      code: 'DESTINATION_INVALID',
      message: expect.stringContaining('already exists'),
    });
    expect(missing).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('fails with COPY_FAILED when the destination fills up, and removePartialArchive cleans up', async () => {
    const small = join(work, 'small-fs');
    const bigSource = join(work, 'random-source');
    await mkdir(small, { recursive: true });
    await mkdir(bigSource, { recursive: true });
    await run('dd', [
      'if=/dev/urandom',
      `of=${join(bigSource, 'random.bin')}`,
      'bs=1M',
      'count=4',
      'status=none',
    ]);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'dssnap-test-full', small]);
    try {
      const error = await catching(
        createArchive({
          source: bigSource,
          destination: small,
          backupId: 'f',
          compression: 'zstd',
          excludes: [],
        }),
      );

      expect(error).toMatchObject({
        code: 'COPY_FAILED',
        message: expect.stringContaining('No space left on device'),
      });
      expect(existsSync(join(small, 'f.tar.zst'))).toBe(false);
      expect(await removePartialArchive(small, 'f')).toBe(true);
      expect(await readdir(small)).toEqual([]);
      expect(await removePartialArchive(small, 'f')).toBe(false);
    } finally {
      await run('umount', [small]);
    }
  });

  it('stops when aborted mid-archive and leaves nothing after removePartialArchive', async () => {
    const largeSource = join(work, 'large-source');
    const dest = join(work, 'dest-abort');
    await mkdir(largeSource, { recursive: true });
    const block = Buffer.alloc(256 * 1024, 7);
    for (let index = 0; index < 600; index++) await writeFile(join(largeSource, `file-${index}.bin`), block);
    const controller = new AbortController();
    const partial = join(dest, '.partial-big.tar.gz');
    const watcher = setInterval(() => {
      if (existsSync(partial)) controller.abort();
    }, 5);

    const error = await catching(
      createArchive({
        source: largeSource,
        destination: dest,
        backupId: 'big',
        compression: 'gzip',
        level: 9,
        excludes: [],
        signal: controller.signal,
      }),
    ).finally(() => clearInterval(watcher));

    expect(error).toMatchObject({ code: 'INTERRUPTED', message: expect.stringContaining('was interrupted') });
    expect(existsSync(join(dest, 'big.tar.gz'))).toBe(false);
    expect(await removePartialArchive(dest, 'big')).toBe(true);
    expect(await readdir(dest)).toEqual([]);
  });

  it('refuses to extract a truncated archive with COPY_FAILED', async () => {
    const archive = join(work, 'dest-gzip', 'b1.tar.gz');
    const truncated = join(work, 'truncated.tar.gz');
    await run('head', ['-c', '2000', archive]).then(({ stdout }) => writeFile(truncated, stdout, 'latin1'));

    const error = await catching(extractArchive(truncated, join(work, 'restored-truncated')));

    expect(error).toMatchObject({ code: 'COPY_FAILED', message: expect.stringContaining('Extracting') });
  });
});
