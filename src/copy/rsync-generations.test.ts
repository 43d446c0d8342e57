import { existsSync } from 'node:fs';
import { appendFile, chmod, mkdir, mkdtemp, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../../test/support/require-root.js';
import { startSshd, type TestSshd } from '../../test/support/sshd.js';
import { buildSampleTree, compareTrees, formatDifferences } from '../../test/support/tree-compare.js';
import { run } from '../host/exec.js';
import {
  createGeneration,
  latestGeneration,
  listGenerations,
  removePartialGeneration,
} from './rsync-generations.js';
import type { CopyProgress } from './types.js';

const excludes = ['/tmp/', '/caches/', '*.pyc'];

async function inode(path: string): Promise<number> {
  return (await stat(path)).ino;
}

/** What each excluded pattern removes from the sample tree, for compareTrees. */
function excludedPaths(pycFiles: readonly string[]): string[] {
  return ['tmp', 'caches', ...pycFiles];
}

/** Many sizeable files, so that a copy is still running when the test reacts to its first progress. */
async function buildLargeTree(root: string): Promise<void> {
  const block = Buffer.alloc(256 * 1024, 7);
  await mkdir(root, { recursive: true });
  for (let index = 0; index < 600; index++) {
    await writeFile(join(root, `file-${String(index).padStart(4, '0')}.bin`), block);
  }
}

describe('rsync generations on a real tree', () => {
  let work: string;
  let source: string;
  let dest: string;
  let pycFiles: string[];

  beforeAll(async () => {
    requireRoot();
    work = await mkdtemp(join(tmpdir(), 'dssnap-rsync-test-'));
    source = join(work, 'source');
    dest = join(work, 'backups');
    ({ pycFiles } = await buildSampleTree(source));
  });

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('writes generation 1 identical to the source, without the excluded paths', async () => {
    const progress: CopyProgress[] = [];

    const result = await createGeneration({
      source,
      destination: dest,
      backupId: 'g1',
      excludes,
      onProgress: (update) => progress.push(update),
    });

    const differences = await compareTrees(source, join(dest, 'g1'), { ignore: excludedPaths(pycFiles) });
    expect(formatDifferences(differences)).toBe('');
    expect(existsSync(join(dest, 'g1', 'tmp'))).toBe(false);
    expect(existsSync(join(dest, 'g1', 'caches'))).toBe(false);
    expect(existsSync(join(dest, 'g1', 'lib/python/module.pyc'))).toBe(false);
    expect(existsSync(join(dest, 'g1', 'projects/P1/tmp/kept.txt'))).toBe(true);
    expect(existsSync(join(dest, '.partial-g1'))).toBe(false);
    expect(result.location).toBe(join(dest, 'g1'));
    expect(result.warnings).toEqual([]);
    expect(result.stats.files).toBeGreaterThan(20);
    expect(result.stats.totalBytes).toBeGreaterThan(256 * 1024);
    // A first generation transfers all file data; the total also counts symlink targets.
    expect(result.stats.transferredBytes).toBeGreaterThan(256 * 1024);
    expect(result.stats.transferredBytes).toBeLessThanOrEqual(result.stats.totalBytes);
    expect(progress.at(-1)?.bytes).toBe(result.stats.transferredBytes);
    expect(progress.at(-1)?.percent).toBeGreaterThanOrEqual(99);
    // Kept to prove below that generation 2 leaves generation 1 as it was.
    await run('cp', ['-a', '--preserve=all', join(dest, 'g1'), join(work, 'g1-as-written')]);
  });

  it('writes generation 2 hard-linked to generation 1 for unchanged files only', async () => {
    await writeFile(join(source, 'config/general-settings.json'), '{"dssnap": "changed"}\n');
    await appendFile(join(source, 'data/original.txt'), 'appended to a hard-linked file\n');
    await writeFile(join(source, 'config/new-file.json'), '{}\n');
    await unlink(join(source, 'name with  spaces.txt'));
    await chmod(join(source, 'bin/dss'), 0o750);

    const result = await createGeneration({
      source,
      destination: dest,
      backupId: 'g2',
      previousBackupId: 'g1',
      excludes,
    });

    const differences = await compareTrees(source, join(dest, 'g2'), { ignore: excludedPaths(pycFiles) });
    expect(formatDifferences(differences)).toBe('');
    for (const unchanged of ['data/blob.bin', 'config/projects/P1/params.json', 'owned/by-1234.txt']) {
      expect(await inode(join(dest, 'g2', unchanged)), unchanged).toBe(
        await inode(join(dest, 'g1', unchanged)),
      );
    }
    for (const changed of ['config/general-settings.json', 'data/original.txt', 'bin/dss']) {
      expect(await inode(join(dest, 'g2', changed)), changed).not.toBe(
        await inode(join(dest, 'g1', changed)),
      );
    }
    expect(formatDifferences(await compareTrees(join(work, 'g1-as-written'), join(dest, 'g1')))).toBe('');
    expect(result.warnings).toEqual([]);
    expect(result.stats.transferredBytes).toBeLessThan(1024);
  });

  it('lists complete generations only, oldest first', async () => {
    await mkdir(join(dest, '.partial-g3'), { recursive: true });
    await mkdir(join(dest, '.dssnap', 'catalog'), { recursive: true });
    await writeFile(join(dest, 'not-a-generation.txt'), 'x');

    const generations = await listGenerations(dest);
    const latest = await latestGeneration(dest);

    expect(generations).toEqual(['g1', 'g2']);
    expect(latest).toBe('g2');
    expect(await listGenerations(join(work, 'no-such-destination'))).toEqual([]);
    expect(await removePartialGeneration(dest, 'g3')).toBe(true);
  });

  it('refuses to overwrite a complete generation', async () => {
    const error = await createGeneration({ source, destination: dest, backupId: 'g2', excludes }).catch(
      (thrown) => thrown,
    );

    expect(error).toMatchObject({
      code: 'DESTINATION_INVALID',
      message: expect.stringContaining('already exists'),
    });
  });

  it('makes a full copy, with a warning, when the previous generation is gone', async () => {
    const result = await createGeneration({
      source,
      destination: join(work, 'other-backups'),
      backupId: 'g1',
      previousBackupId: 'g0',
      excludes,
    });

    expect(result.warnings).toEqual([expect.stringContaining('previous generation') as unknown]);
    expect(result.warnings[0]).toContain('was not found: this generation is a full copy');
    expect(
      formatDifferences(await compareTrees(source, result.location, { ignore: excludedPaths(pycFiles) })),
    ).toBe('');
  });

  it('refuses a missing source, a bad backup id and a bad pattern before copying', async () => {
    const attempt = (options: Partial<Parameters<typeof createGeneration>[0]>): Promise<unknown> =>
      createGeneration({ source, destination: dest, backupId: 'x', excludes, ...options }).catch(
        (thrown) => thrown,
      );

    const missing = await attempt({ source: join(work, 'nope') });
    const dotted = await attempt({ backupId: '../escape' });
    const pattern = await attempt({ excludes: ['/tmp/\n/caches/'] });

    expect(missing).toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('does not exist') });
    expect(dotted).toMatchObject({ code: 'USAGE', message: expect.stringContaining('starts with a dot') });
    expect(pattern).toMatchObject({ code: 'USAGE', message: expect.stringContaining('several lines') });
    expect(existsSync(join(dest, 'x'))).toBe(false);
  });

  it('fails with COPY_FAILED naming rsync exit 11 when the destination fills up, and leaves no generation', async () => {
    const small = join(work, 'small-fs');
    const bigSource = join(work, 'big-source');
    await mkdir(small, { recursive: true });
    await mkdir(bigSource, { recursive: true });
    await run('head', ['-c', String(4 * 1024 * 1024), '/dev/urandom'], { timeoutMs: 10_000 }).then(
      ({ stdout }) => writeFile(join(bigSource, 'random.bin'), stdout, 'latin1'),
    );
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'dssnap-test-full', small]);
    try {
      const error = await createGeneration({
        source: bigSource,
        destination: small,
        backupId: 'full',
        excludes: [],
      }).catch((thrown) => thrown);

      expect(error).toMatchObject({ code: 'COPY_FAILED' });
      expect(error.message).toContain('exit code 11: error in file I/O');
      expect(error.message).toContain('No space left on device');
      expect(existsSync(join(small, 'full'))).toBe(false);
      expect(await removePartialGeneration(small, 'full')).toBe(true);
      expect(existsSync(join(small, '.partial-full'))).toBe(false);
      expect(await removePartialGeneration(small, 'full')).toBe(false);
      expect(await listGenerations(small)).toEqual([]);
    } finally {
      await run('umount', [small]);
    }
  });

  describe('on a larger tree', () => {
    let largeSource: string;

    beforeAll(async () => {
      largeSource = join(work, 'large-source');
      await buildLargeTree(largeSource);
    });

    it('stops at once when aborted mid-copy and leaves nothing after removePartialGeneration', async () => {
      const controller = new AbortController();
      const largeDest = join(work, 'large-abort');

      const error = await createGeneration({
        source: largeSource,
        destination: largeDest,
        backupId: 'aborted',
        excludes: [],
        signal: controller.signal,
        onProgress: () => controller.abort(),
      }).catch((thrown) => thrown);

      expect(error).toMatchObject({
        code: 'INTERRUPTED',
        message: expect.stringContaining('was interrupted'),
      });
      expect(existsSync(join(largeDest, 'aborted'))).toBe(false);
      expect(await removePartialGeneration(largeDest, 'aborted')).toBe(true);
      expect(existsSync(join(largeDest, '.partial-aborted'))).toBe(false);
      expect(await listGenerations(largeDest)).toEqual([]);
    });

    it('turns rsync exit 24 (a file vanished during the copy) into a warning and completes', async () => {
      const vanishing = join(largeSource, 'file-0599.bin');
      let removed = false;

      const result = await createGeneration({
        source: largeSource,
        destination: join(work, 'large-vanish'),
        backupId: 'v1',
        excludes: [],
        onProgress: () => {
          if (removed) return;
          removed = true;
          // Listed by rsync at the start, gone by the time its turn comes.
          unlink(vanishing).catch(() => undefined);
        },
      });

      expect(result.warnings).toEqual([
        expect.stringContaining('exited with code 24 (partial transfer due to vanished source files)'),
      ]);
      expect(result.warnings[0]).toContain('file-0599.bin');
      expect(existsSync(join(work, 'large-vanish', 'v1', 'file-0598.bin'))).toBe(true);
      expect(existsSync(join(work, 'large-vanish', 'v1', 'file-0599.bin'))).toBe(false);
    });
  });
});

describe('rsync generations to a remote destination over ssh', () => {
  let work: string;
  let sshd: TestSshd;
  let source: string;
  let remoteDir: string;
  let destination: string;
  let pycFiles: string[];

  beforeAll(async () => {
    requireRoot();
    work = await mkdtemp(join(tmpdir(), 'dssnap-rsync-remote-'));
    sshd = await startSshd();
    source = join(work, 'source');
    // A space and a quote in the remote path: every remote command must quote it.
    remoteDir = join(work, "remote backups/it's here");
    destination = `root@127.0.0.1:${remoteDir}`;
    ({ pycFiles } = await buildSampleTree(source));
  });

  afterAll(async () => {
    await sshd?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('writes two generations, the second hard-linked to the first, and lists them', async () => {
    const options = { source, destination, excludes, sshCommand: sshd.sshCommand };

    const first = await createGeneration({ ...options, backupId: 'r1' });
    await writeFile(join(source, 'config/general-settings.json'), '{"dssnap": "remote change"}\n');
    const second = await createGeneration({ ...options, backupId: 'r2', previousBackupId: 'r1' });

    expect(first.location).toBe(`${destination}/r1`);
    expect(second.warnings).toEqual([]);
    expect(
      formatDifferences(
        await compareTrees(source, join(remoteDir, 'r2'), { ignore: excludedPaths(pycFiles) }),
      ),
    ).toBe('');
    expect(await inode(join(remoteDir, 'r2/data/blob.bin'))).toBe(
      await inode(join(remoteDir, 'r1/data/blob.bin')),
    );
    expect(await inode(join(remoteDir, 'r2/config/general-settings.json'))).not.toBe(
      await inode(join(remoteDir, 'r1/config/general-settings.json')),
    );
    expect(await listGenerations(destination, { sshCommand: sshd.sshCommand })).toEqual(['r1', 'r2']);
    expect(await latestGeneration(destination, { sshCommand: sshd.sshCommand })).toBe('r2');
  });

  it('removes a remote partial generation, idempotently', async () => {
    await mkdir(join(remoteDir, '.partial-r3', 'config'), { recursive: true });

    const first = await removePartialGeneration(destination, 'r3', { sshCommand: sshd.sshCommand });
    const second = await removePartialGeneration(destination, 'r3', { sshCommand: sshd.sshCommand });

    expect([first, second]).toEqual([true, false]);
    expect(existsSync(join(remoteDir, '.partial-r3'))).toBe(false);
    expect(existsSync(join(remoteDir, 'r2'))).toBe(true);
  });

  it('fails with COPY_FAILED and a hint when the host refuses the login', async () => {
    const badSsh = sshd.sshCommand.replace(/-i \S+/, `-i ${join(work, 'no-such-key')}`);

    const error = await createGeneration({
      source,
      destination,
      excludes,
      sshCommand: badSsh,
      backupId: 'r9',
    }).catch((thrown) => thrown);

    expect(error).toMatchObject({
      code: 'COPY_FAILED',
      message: expect.stringContaining('Permission denied'),
    });
    expect(error.message).toContain(`Cannot prepare the destination ${destination} over ssh (exit code 255)`);
    expect(error.hint).toContain('without a prompt');
  });
});
