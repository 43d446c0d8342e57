import {
  appendFile,
  chmod,
  chown,
  mkdir,
  mkdtemp,
  rm,
  symlink,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/host/exec.js';
import { requireRoot } from './require-root.js';
import { buildSampleTree, compareTrees, type DifferenceKind } from './tree-compare.js';

describe('compareTrees', () => {
  let work: string;
  let base: string;
  let copies = 0;

  /** A fresh faithful copy of the sample tree (cp -a keeps links, owners, xattrs and ACLs). */
  async function copyOfBase(): Promise<string> {
    const copy = join(work, `copy-${++copies}`);
    await run('cp', ['-a', '--preserve=all', base, copy]);
    return copy;
  }

  beforeAll(async () => {
    requireRoot();
    work = await mkdtemp(join(tmpdir(), 'dssnap-tree-compare-'));
    base = join(work, 'base');
    await buildSampleTree(base);
  });

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('finds no difference between a tree and a faithful copy', async () => {
    const copy = await copyOfBase();

    const differences = await compareTrees(base, copy);

    expect(differences).toEqual([]);
  });

  it.each<[string, DifferenceKind, string, (root: string) => Promise<unknown>]>([
    [
      'same-size content',
      'content',
      'config/secret.key',
      (root) => writeFile(join(root, 'config/secret.key'), 'not-a-real-secreT\n'),
    ],
    ['file length', 'content', 'bin/dss', (root) => appendFile(join(root, 'bin/dss'), '# more\n')],
    ['permission bits', 'mode', 'shared', (root) => chmod(join(root, 'shared'), 0o775)],
    ['owner', 'owner', 'data/blob.bin', (root) => chown(join(root, 'data/blob.bin'), 0, 1234)],
    [
      'mtime',
      'mtime',
      'data/old.txt',
      (root) => utimes(join(root, 'data/old.txt'), new Date(0), new Date('2001-02-03T04:05:07Z')),
    ],
    [
      'symlink target',
      'symlink-target',
      'dangling-link',
      async (root) => {
        await unlink(join(root, 'dangling-link'));
        await symlink('/other/target', join(root, 'dangling-link'));
        await run('touch', ['-h', '-r', join(base, 'dangling-link'), join(root, 'dangling-link')]);
      },
    ],
    [
      'file removal',
      'only-in-a',
      'name with  spaces.txt',
      (root) => unlink(join(root, 'name with  spaces.txt')),
    ],
    ['file addition', 'only-in-b', 'extra.txt', (root) => writeFile(join(root, 'extra.txt'), 'extra')],
    [
      'file type (directory to file)',
      'type',
      'empty-dir',
      async (root) => {
        await rm(join(root, 'empty-dir'), { recursive: true });
        await writeFile(join(root, 'empty-dir'), '');
      },
    ],
    [
      'hard link (broken into copies)',
      'hard-links',
      'config/third-link.txt',
      async (root) => {
        await run('cp', ['-a', join(root, 'data/hard-link.txt'), join(root, 'data/separate.tmp')]);
        await run('mv', [join(root, 'data/separate.tmp'), join(root, 'data/hard-link.txt')]);
      },
    ],
    [
      'xattr',
      'xattrs',
      'config/general-settings.json',
      (root) => run('setfattr', ['-x', 'user.dssnap.note', join(root, 'config/general-settings.json')]),
    ],
    ['ACL', 'xattrs', 'config/secret.key', (root) => run('setfacl', ['-b', join(root, 'config/secret.key')])],
  ])('reports a changed %s as %s of %s', async (_what, kind, path, mutate) => {
    const copy = await copyOfBase();
    await mutate(copy);

    const differences = await compareTrees(base, copy);

    expect(differences).toContainEqual(expect.objectContaining({ path, kind }));
  });

  it('leaves out ignored paths and what is below them', async () => {
    const copy = await copyOfBase();
    await rm(join(copy, 'tmp'), { recursive: true });
    await mkdir(join(copy, 'caches', 'more'), { recursive: true });
    await run('touch', ['-r', join(base, 'caches'), join(copy, 'caches')]);
    await run('touch', ['-r', base, copy]);

    const differences = await compareTrees(base, copy, { ignore: ['tmp', './caches/'] });

    expect(differences).toEqual([]);
  });
});
