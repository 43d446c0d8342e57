import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertExcludePatterns, tarExcludeArgs, toTarExclude } from './exclude-patterns.js';

describe('toTarExclude', () => {
  it.each([
    ['/tmp/', ['--anchored', '--no-wildcards', '--no-wildcards-match-slash', '--exclude=./tmp'], true],
    [
      '/config/secret.key',
      ['--anchored', '--no-wildcards', '--no-wildcards-match-slash', '--exclude=./config/secret.key'],
      true,
    ],
    ['*.pyc', ['--no-anchored', '--wildcards', '--no-wildcards-match-slash', '--exclude=*.pyc'], true],
    [
      'logs/*.log',
      ['--no-anchored', '--wildcards', '--no-wildcards-match-slash', '--exclude=logs/*.log'],
      true,
    ],
    ['/a/**/deep', ['--anchored', '--wildcards', '--wildcards-match-slash', '--exclude=./a/*/deep'], true],
    ['cache/', ['--no-anchored', '--no-wildcards', '--no-wildcards-match-slash', '--exclude=cache'], false],
    ['/run/*/', ['--anchored', '--wildcards', '--no-wildcards-match-slash', '--exclude=./run/*'], false],
  ])('translates %j', (pattern, args, exact) => {
    const translated = toTarExclude(pattern);

    expect(translated).toEqual({ args, exact });
  });
});

describe('assertExcludePatterns', () => {
  it.each(['', '   ', '/', '//', 'a\nb'])('refuses %j', (pattern) => {
    const act = (): void => assertExcludePatterns(['/tmp/', pattern]);

    expect(act).toThrow(/is empty, only slashes, or spans several lines/);
  });
});

describe('tarExcludeArgs', () => {
  let source: string;

  beforeAll(async () => {
    source = await mkdtemp(join(tmpdir(), 'dssnap-excl-'));
    await writeFile(join(source, 'tmp'), 'a file named tmp, not a directory');
    await mkdir(join(source, 'caches'));
  });

  afterAll(async () => {
    await rm(source, { recursive: true, force: true });
  });

  it('drops an anchored directory pattern whose path is a file, as rsync keeps it', async () => {
    const { args } = await tarExcludeArgs(source, ['/tmp/', '/caches/', '/missing/']);

    expect(args.filter((arg) => arg.startsWith('--exclude='))).toEqual([
      '--exclude=./caches',
      '--exclude=./missing',
    ]);
  });

  it('reports directory-only patterns tar applies to files too', async () => {
    const { inexact } = await tarExcludeArgs(source, ['/tmp/', 'cache/', '*.pyc']);

    expect(inexact).toEqual(['cache/']);
  });
});
