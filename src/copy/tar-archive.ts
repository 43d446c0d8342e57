/**
 * One compressed archive per backup: `DEST/<backupId>.tar.zst` (or `.tar.gz`), members relative to the
 * source (`./config/...`), with permissions, numeric owners, ACLs and every xattr namespace. Written as
 * `DEST/.partial-<backupId>.tar.*`, flushed to disk, then renamed: an archive with the final name is
 * always complete.
 */
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { DssnapError } from '../errors.js';
import { CommandError, lastLines, requireTool, run } from '../host/exec.js';
import { type Logger, silentLogger } from '../log.js';
import { assertBackupId, partialName } from './backup-id.js';
import { assertSourceDirectory } from './copy-source.js';
import { parseDestination } from './destination.js';
import { tarExcludeArgs } from './exclude-patterns.js';
import type { CopyResult } from './types.js';

export type Compression = 'zstd' | 'gzip';

export interface ArchiveOptions {
  /** Directory whose content is archived (a mounted snapshot, or the stopped DATA_DIR). */
  source: string;
  /** Local directory; created if missing. */
  destination: string;
  backupId: string;
  compression: Compression;
  /** zstd 1–19 (default 3), gzip 1–9 (default 6). */
  level?: number;
  /** rsync patterns anchored at the source root (`/tmp/`, `*.pyc`). */
  excludes: readonly string[];
  signal?: AbortSignal;
  log?: Logger;
}

const compressions: Readonly<
  Record<Compression, { suffix: string; min: number; max: number; level: number }>
> = {
  zstd: { suffix: '.tar.zst', min: 1, max: 19, level: 3 },
  gzip: { suffix: '.tar.gz', min: 1, max: 9, level: 6 },
};

/** The archive file name of a backup: `<backupId>.tar.zst` or `<backupId>.tar.gz`. */
export function archiveName(backupId: string, compression: Compression): string {
  return `${backupId}${compressions[compression].suffix}`;
}

/**
 * Archive `source` into `DEST/<backupId>.tar.zst|.tar.gz`. Returns when the archive is complete, on disk
 * and renamed into place. tar exit 1 (a file changed or vanished while being read) comes back as a
 * warning. Throws USAGE for a bad level, DESTINATION_INVALID for a remote destination or an existing
 * archive, COPY_FAILED when tar fails, INTERRUPTED when `signal` aborts, TOOL_MISSING without tar or the
 * compressor; after a throw the partial archive may remain: `removePartialArchive` is the undo step.
 */
export async function createArchive(options: ArchiveOptions): Promise<CopyResult> {
  const log = options.log ?? silentLogger();
  const { backupId, compression } = options;
  assertBackupId(backupId);
  const spec = compressions[compression];
  if (!spec) {
    throw new DssnapError(
      'USAGE',
      `The compression '${String(compression)}' is not supported; must be one of: zstd, gzip`,
    );
  }
  const level = options.level ?? spec.level;
  if (!Number.isInteger(level) || level < spec.min || level > spec.max) {
    throw new DssnapError(
      'USAGE',
      `The ${compression} compression level ${String(level)} is out of range; must be an integer from ${spec.min} to ${spec.max}`,
      { details: { compression, level } },
    );
  }
  const destination = localDestination(options.destination);
  const source = await assertSourceDirectory(options.source);
  const tar = requireTool('tar', 'tar');
  // -T0: one zstd worker per core; gzip has no threads.
  const compressor =
    compression === 'zstd'
      ? `${requireTool('zstd', 'zstd')} -T0 -${level}`
      : `${requireTool('gzip', 'gzip')} -${level}`;
  const excludes = await tarExcludeArgs(source, options.excludes);
  if (excludes.inexact.length > 0) {
    log.warn(
      { patterns: excludes.inexact },
      'Directory-only patterns also exclude files of that name in tar',
    );
  }

  await mkdir(destination, { recursive: true });
  const finalPath = join(destination, archiveName(backupId, compression));
  if (await exists(finalPath)) {
    throw new DssnapError('DESTINATION_INVALID', `A backup archive ${finalPath} already exists`, {
      hint: 'Backup ids must be unique; a complete archive is never overwritten.',
      details: { backupId },
    });
  }
  const partialPath = join(destination, partialName(archiveName(backupId, compression)));
  const indexPath = indexPathOf(destination, backupId);
  const args = [
    '--create',
    `--file=${partialPath}`,
    '--numeric-owner',
    '--xattrs',
    '--acls',
    '-p',
    // Members in name order (depth first), as dssnap's file index lists them: verify reads both in step.
    '--sort=name',
    `--use-compress-program=${compressor}`,
    // The member listing goes to a file, not to memory: at a million files it is tens of megabytes.
    '-vv',
    `--index-file=${indexPath}`,
    ...excludes.args,
    '-C',
    source,
    '.',
  ];
  log.info({ source, archive: finalPath, compression, level }, 'Archive started');
  const started = performance.now();
  const warnings: string[] = [];
  try {
    const { exitCode, stderr } = await run(tar, args, {
      signal: options.signal,
      okExitCodes: [1],
      env: { LC_ALL: 'C' },
    });
    const detail = lastLines(stderr, 5);
    if (exitCode === 1) {
      warnings.push(
        `tar exited with code 1 (some files changed or vanished while being read)${detail ? `: ${detail}` : ''}`,
      );
      log.warn({ exitCode, stderr: detail }, 'tar completed with warnings');
    } else if (detail) {
      // e.g. "socket ignored": tar cannot archive sockets; nothing a restore needs.
      log.info({ stderr: detail }, 'tar notes');
    }
  } catch (error) {
    throw archiveError(error, finalPath, partialPath);
  }
  const { files, totalBytes } = await readIndex(indexPath);
  const transferredBytes = await flushToDisk(partialPath);
  await rename(partialPath, finalPath);
  await flushToDisk(destination);
  await rm(indexPath, { force: true });
  const stats = { files, totalBytes, transferredBytes, durationMs: Math.round(performance.now() - started) };
  log.info({ location: finalPath, ...stats }, 'Archive finished');
  return { location: finalPath, warnings, stats };
}

/**
 * Remove what a failed or killed `createArchive` leaves (`DEST/.partial-<backupId>.tar.*` and its member
 * index). Idempotent: returns false when there was nothing to remove. Never touches a complete archive.
 */
export async function removePartialArchive(destination: string, backupId: string): Promise<boolean> {
  assertBackupId(backupId);
  const dir = localDestination(destination);
  const paths = [
    ...(Object.keys(compressions) as Compression[]).map((compression) =>
      join(dir, partialName(archiveName(backupId, compression))),
    ),
    indexPathOf(dir, backupId),
  ];
  let removed = false;
  for (const path of paths) {
    if (await exists(path)) removed = true;
    await rm(path, { force: true });
  }
  return removed;
}

/**
 * Extract `archive` (`.tar.zst`, `.tar.gz`, or plain `.tar`) into `target` (created if missing) with
 * permissions, numeric owners, ACLs and all xattrs — ownership needs root. Returns when extracted. Files
 * already in `target` are overwritten, others left alone: restore into an empty directory. Throws
 * NOT_FOUND for a missing archive, COPY_FAILED when tar fails (e.g. a truncated archive).
 */
export async function extractArchive(
  archive: string,
  target: string,
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  const archivePath = resolve(archive);
  if (!(await exists(archivePath))) {
    throw new DssnapError('NOT_FOUND', `The archive ${archivePath} does not exist`, {
      details: { archive: archivePath },
    });
  }
  const decompressor = archivePath.endsWith('.zst')
    ? [`--use-compress-program=${requireTool('zstd', 'zstd')}`]
    : archivePath.endsWith('.gz')
      ? [`--use-compress-program=${requireTool('gzip', 'gzip')}`]
      : [];
  await mkdir(target, { recursive: true });
  const args = [
    '--extract',
    `--file=${archivePath}`,
    ...decompressor,
    '--numeric-owner',
    '-p',
    '--same-owner',
    '--xattrs',
    // Without it tar restores only user.* xattrs: trusted.* and security.* would be lost.
    '--xattrs-include=*',
    '--acls',
    '-C',
    resolve(target),
  ];
  try {
    await run(requireTool('tar', 'tar'), args, { signal: options.signal, env: { LC_ALL: 'C' } });
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    if (error.isCanceled) {
      throw new DssnapError('INTERRUPTED', `Extracting ${archivePath} was interrupted`, {
        cause: error,
        details: { archive: archivePath, target },
      });
    }
    throw new DssnapError('COPY_FAILED', `Extracting ${archivePath} failed: ${lastLines(error.stderr, 5)}`, {
      cause: error,
      hint: 'Check that the archive is complete (dssnap verify) and that the target has free space.',
      details: { archive: archivePath, target, exitCode: error.exitCode_ },
    });
  }
}

function localDestination(dest: string): string {
  const parsed = parseDestination(dest);
  if (parsed.kind === 'remote') {
    throw new DssnapError(
      'DESTINATION_INVALID',
      `tar archives are written to a local directory, not to ${dest}`,
      {
        hint: 'Use the rsync copy format for ssh destinations, or mount the remote storage locally.',
        details: { destination: dest },
      },
    );
  }
  return parsed.path;
}

function indexPathOf(destination: string, backupId: string): string {
  return join(destination, `${partialName(backupId)}.files`);
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw error;
    },
  );
}

/** fsync `path` (a file or a directory); returns its size. */
async function flushToDisk(path: string): Promise<number> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
    return (await handle.stat()).size;
  } finally {
    await handle.close();
  }
}

/**
 * Count the members of tar's `-vv` listing and add up the sizes of regular files, streaming (the listing
 * can be large). Lines look like `-rw-r--r--  0/0   1234 2024-05-01 10:00 ./config/x.json`.
 */
async function readIndex(path: string): Promise<{ files: number; totalBytes: number }> {
  let files = 0;
  let totalBytes = 0;
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    if (!line) continue;
    files++;
    const match = /^-\S*\s+\S+\s+(\d+)\s/.exec(line);
    if (match) totalBytes += Number(match[1]);
  }
  return { files, totalBytes };
}

function archiveError(error: unknown, location: string, partial: string): unknown {
  if (!(error instanceof CommandError)) return error;
  if (error.isCanceled) {
    return new DssnapError('INTERRUPTED', `Writing ${location} was interrupted`, {
      cause: error,
      hint: `The partial archive ${partial} is removed by the run's clean-up ('dssnap recover' after a crash).`,
      details: { location },
    });
  }
  const code = error.exitCode_;
  const detail = lastLines(error.stderr, 5);
  return new DssnapError(
    'COPY_FAILED',
    `tar failed writing ${location} (${code === undefined ? 'killed by a signal' : `exit code ${code}`})${detail ? `: ${detail}` : ''}`,
    {
      cause: error,
      hint: `Check that the destination is writable and has free space. The partial archive ${partial} is removed by the run's clean-up.`,
      details: { location, exitCode: code, timedOut: error.timedOut },
    },
  );
}
