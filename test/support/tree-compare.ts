/**
 * Trees for copy and restore tests: `buildSampleTree` makes one with every awkward case, `compareTrees`
 * compares two the way a restore must reproduce them: entry types, file content (sha256),
 * permission bits (setuid/setgid/sticky included), numeric owner, symlink targets, device numbers, mtime
 * (whole seconds), hard-link structure, and — by default — every xattr, ACLs included. Tests use it to
 * prove byte-for-byte copies and restores. Both need root (chown, trusted xattrs) and the tools
 * setfattr/getfattr (package `attr`), setfacl (package `acl`).
 */
import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import {
  chmod,
  chown,
  link,
  lstat,
  mkdir,
  readdir,
  readlink,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { requireTool, run } from '../../src/host/exec.js';

export type DifferenceKind =
  | 'only-in-a'
  | 'only-in-b'
  | 'type'
  | 'content'
  | 'mode'
  | 'owner'
  | 'symlink-target'
  | 'device'
  | 'mtime'
  | 'hard-links'
  | 'xattrs';

export interface Difference {
  /** Relative to the tree roots; `.` is the root itself. */
  path: string;
  kind: DifferenceKind;
  a?: string;
  b?: string;
}

export interface CompareOptions {
  /** Relative paths left out, each with everything below it (`tmp`, `config/secret.json`). */
  ignore?: readonly string[];
  /** Compare xattrs and ACLs (needs getfattr, package `attr`). Default true. */
  xattrs?: boolean;
}

interface Entry {
  stats: Stats;
  type: string;
}

/**
 * Every difference between the trees at `a` and `b`, sorted by path; empty when they are identical.
 * Hard links: files linked together in one tree must be linked together, and only together, in the other
 * (links to files outside a tree, such as an older rsync generation, do not count).
 */
export async function compareTrees(
  a: string,
  b: string,
  options: CompareOptions = {},
): Promise<Difference[]> {
  const ignore = (options.ignore ?? []).map((path) => path.replace(/^(\.\/)+|^\/+|\/+$/g, ''));
  const isIgnored = (path: string): boolean =>
    ignore.some((prefix) => path === prefix || path.startsWith(`${prefix}/`));
  const [treeA, treeB] = await Promise.all([walk(a, isIgnored), walk(b, isIgnored)]);
  const differences: Difference[] = [];
  const add = (path: string, kind: DifferenceKind, valueA?: unknown, valueB?: unknown): void => {
    differences.push({
      path,
      kind,
      ...(valueA === undefined ? {} : { a: String(valueA) }),
      ...(valueB === undefined ? {} : { b: String(valueB) }),
    });
  };

  for (const path of treeA.keys()) if (!treeB.has(path)) add(path, 'only-in-a');
  for (const path of treeB.keys()) if (!treeA.has(path)) add(path, 'only-in-b');
  const common = [...treeA.keys()].filter((path) => treeB.has(path));
  for (const path of common) {
    const x = treeA.get(path)!;
    const y = treeB.get(path)!;
    if (x.type !== y.type) {
      add(path, 'type', x.type, y.type);
      continue;
    }
    const modeX = x.stats.mode & 0o7777;
    const modeY = y.stats.mode & 0o7777;
    // A symlink's own mode bits mean nothing on Linux and differ between filesystems.
    if (x.type !== 'symlink' && modeX !== modeY) add(path, 'mode', octal(modeX), octal(modeY));
    if (x.stats.uid !== y.stats.uid || x.stats.gid !== y.stats.gid) {
      add(path, 'owner', `${x.stats.uid}:${x.stats.gid}`, `${y.stats.uid}:${y.stats.gid}`);
    }
    if (Math.floor(x.stats.mtimeMs / 1000) !== Math.floor(y.stats.mtimeMs / 1000)) {
      add(path, 'mtime', x.stats.mtime.toISOString(), y.stats.mtime.toISOString());
    }
    if (x.type === 'symlink') {
      const [targetX, targetY] = await Promise.all([readlink(join(a, path)), readlink(join(b, path))]);
      if (targetX !== targetY) add(path, 'symlink-target', targetX, targetY);
    }
    if ((x.type === 'char-device' || x.type === 'block-device') && x.stats.rdev !== y.stats.rdev) {
      add(path, 'device', x.stats.rdev, y.stats.rdev);
    }
    if (x.type === 'file') {
      if (x.stats.size !== y.stats.size)
        add(path, 'content', `${x.stats.size} bytes`, `${y.stats.size} bytes`);
      else {
        const [hashX, hashY] = await Promise.all([sha256(join(a, path)), sha256(join(b, path))]);
        if (hashX !== hashY) add(path, 'content', `sha256 ${hashX}`, `sha256 ${hashY}`);
      }
    }
  }
  compareHardLinks(treeA, treeB, new Set(common), add);
  if (options.xattrs ?? true) {
    const [xattrsA, xattrsB] = await Promise.all([readXattrs(a), readXattrs(b)]);
    for (const path of common) {
      const x = xattrsA.get(path) ?? '';
      const y = xattrsB.get(path) ?? '';
      if (x !== y) add(path, 'xattrs', x || '(none)', y || '(none)');
    }
  }
  return differences.sort((left, right) => (left.path < right.path ? -1 : left.path > right.path ? 1 : 0));
}

/** One line per difference, for assertion messages. */
export function formatDifferences(differences: readonly Difference[]): string {
  return differences
    .map(
      (d) =>
        `${d.path}: ${d.kind}${d.a !== undefined || d.b !== undefined ? ` (a: ${d.a ?? '-'}, b: ${d.b ?? '-'})` : ''}`,
    )
    .join('\n');
}

async function walk(root: string, isIgnored: (path: string) => boolean): Promise<Map<string, Entry>> {
  const entries = new Map<string, Entry>();
  const rootStats = await lstat(root);
  entries.set('.', { stats: rootStats, type: typeOf(rootStats) });
  const pending = [''];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    for (const name of await readdir(join(root, dir))) {
      const path = dir ? `${dir}/${name}` : name;
      if (isIgnored(path)) continue;
      const stats = await lstat(join(root, path));
      const type = typeOf(stats);
      entries.set(path, { stats, type });
      if (type === 'directory') pending.push(path);
    }
  }
  return entries;
}

function typeOf(stats: Stats): string {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'directory';
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isFIFO()) return 'fifo';
  if (stats.isSocket()) return 'socket';
  if (stats.isCharacterDevice()) return 'char-device';
  if (stats.isBlockDevice()) return 'block-device';
  return 'unknown';
}

function compareHardLinks(
  treeA: Map<string, Entry>,
  treeB: Map<string, Entry>,
  common: Set<string>,
  add: (path: string, kind: DifferenceKind, a?: unknown, b?: unknown) => void,
): void {
  const groupsOf = (tree: Map<string, Entry>): Map<string, string> => {
    const byInode = new Map<number, string[]>();
    for (const [path, entry] of tree) {
      if (entry.type !== 'file' || !common.has(path)) continue;
      byInode.set(entry.stats.ino, [...(byInode.get(entry.stats.ino) ?? []), path]);
    }
    const groupOf = new Map<string, string>();
    for (const paths of byInode.values()) {
      const key = paths.sort().join(' = ');
      for (const path of paths) groupOf.set(path, key);
    }
    return groupOf;
  };
  const groupsA = groupsOf(treeA);
  const groupsB = groupsOf(treeB);
  const reported = new Set<string>();
  for (const [path, groupA] of groupsA) {
    const groupB = groupsB.get(path);
    if (groupB === undefined || groupA === groupB || reported.has(groupA)) continue;
    reported.add(groupA);
    add(path, 'hard-links', groupA, groupB);
  }
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Every xattr of every entry (symlinks not followed), ACLs included, by relative path. One getfattr run
 * per tree; it escapes
 * backslashes and control characters in names as `\ooo`, decoded back here.
 */
async function readXattrs(root: string): Promise<Map<string, string>> {
  const getfattr = requireTool('getfattr', 'attr');
  const { stdout } = await run(getfattr, ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '.'], {
    cwd: root,
    env: { LC_ALL: 'C' },
  });
  const result = new Map<string, string>();
  for (const block of stdout.split(/\n\n+/)) {
    const [header, ...attributes] = block.trim().split('\n');
    const match = /^# file: (.*)$/.exec(header ?? '');
    if (!match) continue;
    const name = unescapeGetfattr(match[1]!);
    const path = name === '.' ? '.' : name.replace(/^\.\//, '');
    result.set(path, attributes.sort().join(', '));
  }
  return result;
}

function unescapeGetfattr(escaped: string): string {
  const bytes: number[] = [];
  for (let index = 0; index < escaped.length; index++) {
    if (escaped[index] === '\\' && /^[0-7]{3}$/.test(escaped.slice(index + 1, index + 4))) {
      bytes.push(Number.parseInt(escaped.slice(index + 1, index + 4), 8));
      index += 3;
    } else if (escaped[index] === '\\' && escaped[index + 1] === '\\') {
      bytes.push(0x5c);
      index += 1;
    } else {
      bytes.push(...Buffer.from(escaped[index]!, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function octal(mode: number): string {
  return `0${mode.toString(8)}`;
}

/**
 * Build a small tree at `root` (created) with what a faithful copy must keep: nested text files, a 256 KiB
 * binary, a 0600 file, a setgid directory, a file owned by uid/gid 1234, hard links, relative, directory
 * and dangling symlinks, a fifo, an empty directory, unicode and space names, an old mtime, user and
 * trusted xattrs and an ACL — plus top-level `tmp/` and `caches/` and nested `projects/P1/tmp/` and
 * `*.pyc` files for exclusion tests. Returns the relative paths of those exclusion candidates.
 */
export async function buildSampleTree(root: string): Promise<{ pycFiles: string[] }> {
  const file = async (path: string, content: string | Buffer, mode = 0o644): Promise<void> => {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), content, { mode });
    await chmod(join(root, path), mode);
  };
  await file('config/general-settings.json', '{"dssnap": true}\n');
  await file('config/projects/P1/params.json', '{"projectKey": "P1"}\n');
  await file('bin/dss', '#!/bin/sh\necho dss "$@"\n', 0o755);
  await file(
    'data/blob.bin',
    Buffer.from(Array.from({ length: 256 * 1024 }, (_, index) => (index * 7919) % 251)),
  );
  await file('config/secret.key', 'not-a-real-secret\n', 0o600);
  await file('shared/group-file.txt', 'setgid directory\n');
  await chmod(join(root, 'shared'), 0o2775);
  await file('owned/by-1234.txt', 'owned by uid 1234\n', 0o640);
  await chown(join(root, 'owned/by-1234.txt'), 1234, 1234);
  await file('data/original.txt', 'hard-linked content\n');
  await link(join(root, 'data/original.txt'), join(root, 'data/hard-link.txt'));
  await link(join(root, 'data/original.txt'), join(root, 'config/third-link.txt'));
  await symlink('../config/general-settings.json', join(root, 'data/settings-link.json'));
  await symlink('config', join(root, 'config-dir-link'));
  await symlink('/nonexistent/target', join(root, 'dangling-link'));
  await run('mkfifo', [join(root, 'data/a-fifo')]);
  await mkdir(join(root, 'empty-dir'));
  await file('données projet/été 2024 — notes.txt', 'unicode and spaces\n');
  await file('name with  spaces.txt', 'two spaces\n');
  await file('data/old.txt', 'from 2001\n');
  await utimes(
    join(root, 'data/old.txt'),
    new Date('2001-02-03T04:05:06Z'),
    new Date('2001-02-03T04:05:06Z'),
  );
  const setfattr = requireTool('setfattr', 'attr');
  await run(setfattr, [
    '-n',
    'user.dssnap.note',
    '-v',
    'keep me',
    join(root, 'config/general-settings.json'),
  ]);
  await run(setfattr, ['-n', 'trusted.dssnap', '-v', 'root only', join(root, 'data/blob.bin')]);
  await run(requireTool('setfacl', 'acl'), ['-m', 'u:1234:r', join(root, 'config/secret.key')]);
  await file('tmp/scratch.txt', 'temporary\n');
  await file('caches/cache.bin', 'cache\n');
  await file('projects/P1/tmp/kept.txt', 'a nested tmp is not the top-level tmp\n');
  const pycFiles = ['lib/python/module.pyc', 'projects/P1/lib/deep/other.pyc'];
  for (const path of pycFiles) await file(path, 'compiled\n');
  await file('lib/python/module.py', 'source\n');
  return { pycFiles };
}
