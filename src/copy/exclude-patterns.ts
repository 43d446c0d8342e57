/**
 * Exclusion patterns: rsync-style (anchored at the source root), checked once, and translated into GNU tar `--exclude` options, for an
 * archive made with `-C SOURCE .` (members `./tmp`, `./a/b.pyc`). tar's matching options are positional:
 * each `--exclude` is preceded by the full state it needs.
 *
 * | rsync                         | tar                                                            |
 * |-------------------------------|----------------------------------------------------------------|
 * | `/tmp/` (leading `/`)         | `--anchored ./tmp` — only the top-level `tmp`                  |
 * | `*.pyc`, `cache/` (no `/`)    | `--no-anchored` — that name at any depth                       |
 * | `a/b` (inner `/`)             | `--no-anchored a/b` — that path ending at any depth            |
 * | `*`, `?` do not match `/`     | `--no-wildcards-match-slash`                                   |
 * | `**` matches `/`              | `*` with `--wildcards-match-slash`                             |
 * | no `*?[`: matched literally   | `--no-wildcards`                                               |
 * tar excludes a matching directory with all it holds, as rsync does. A trailing `/` (directories only) has
 * no tar equivalent: for an anchored literal pattern the source is checked and a non-directory is not
 * excluded; other directory-only patterns also exclude files of that name.
 */
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { DssnapError } from '../errors.js';

/** Throw USAGE for a pattern that is empty, only slashes, or that spans several lines. Pure. */
export function assertExcludePatterns(patterns: readonly string[]): void {
  const bad = patterns.find((pattern) => /^\/*$/.test(pattern.trim()) || /[\r\n\0]/.test(pattern));
  if (bad !== undefined) {
    throw new DssnapError(
      'USAGE',
      `The exclusion pattern ${JSON.stringify(bad)} is empty, only slashes, or spans several lines`,
      {
        hint: 'Give one rsync-style pattern per exclusion, e.g. /tmp/ or *.pyc.',
        details: { pattern: bad },
      },
    );
  }
}

export interface TarExclude {
  /** tar options, in order, ending with the `--exclude=` option. */
  args: string[];
  /** False when the rsync pattern only names directories but tar will also exclude files of that name. */
  exact: boolean;
}

/** Translate one rsync pattern. Pure. */
export function toTarExclude(pattern: string): TarExclude {
  const directoryOnly = pattern.length > 1 && pattern.endsWith('/');
  const anchored = pattern.startsWith('/');
  const body = pattern.replace(/^\/+/, '').replace(/\/+$/, '');
  const wildcards = /[*?[]/.test(body);
  const matchSlash = body.includes('**');
  const tarPattern = `${anchored ? './' : ''}${matchSlash ? body.replace(/\*{2,}/g, '*') : body}`;
  return {
    args: [
      anchored ? '--anchored' : '--no-anchored',
      wildcards ? '--wildcards' : '--no-wildcards',
      matchSlash ? '--wildcards-match-slash' : '--no-wildcards-match-slash',
      `--exclude=${tarPattern}`,
    ],
    exact: !directoryOnly || (anchored && !wildcards),
  };
}

/**
 * The tar options for `patterns` (checked with assertExcludePatterns first) against `source`. An anchored literal directory-only pattern (`/tmp/`)
 * whose path exists in `source` as something other than a directory is dropped, as rsync would not
 * exclude it. `inexact` lists the patterns tar applies more broadly than rsync (see the module comment).
 */
export async function tarExcludeArgs(
  source: string,
  patterns: readonly string[],
): Promise<{ args: string[]; inexact: string[] }> {
  assertExcludePatterns(patterns);
  const args: string[] = [];
  const inexact: string[] = [];
  for (const pattern of patterns) {
    const translated = toTarExclude(pattern);
    if (!translated.exact) inexact.push(pattern);
    if (pattern.endsWith('/') && translated.exact) {
      // No trailing slash: lstat must see a file or symlink as what it is, not fail with ENOTDIR.
      const info = await lstat(join(source, pattern.replace(/^\/+|\/+$/g, ''))).catch(() => undefined);
      if (info && !info.isDirectory()) continue;
    }
    args.push(...translated.args);
  }
  return { args, inexact };
}
