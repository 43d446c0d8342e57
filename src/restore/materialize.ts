/**
 * Reading a backup's copy: into a directory (a restore's staging directory, a restore test's temp dir)
 * with owners, permissions, ACLs, xattrs, hard links and symlinks, or one file of it (its
 * `dss-version.json`, its `config/dip.properties`) without unpacking the rest.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Manifest } from '../catalog/manifest.js';
import { parseDestination } from '../copy/destination.js';
import { defaultSshCommand, runRemote } from '../copy/remote-shell.js';
import { extractArchive } from '../copy/tar-archive.js';
import { DssnapError } from '../errors.js';
import { CommandError, lastLines, requireTool, run } from '../host/exec.js';

/** The part of a manifest that says where the copy is. */
export type BackupCopy = NonNullable<Manifest['copy']>;

export interface MaterializeOptions {
  signal?: AbortSignal;
  sshCommand?: string;
}

/**
 * Copy the tree `source` (a generation, local or `host:/path`, or a mounted snapshot) into the directory
 * `target` with `rsync -aHAX --numeric-ids`. Returns when done. Throws COPY_FAILED with rsync's tail.
 */
export async function copyTree(
  source: string,
  target: string,
  options: MaterializeOptions = {},
): Promise<void> {
  const parsed = parseDestination(source);
  const args = [
    '-aHAX',
    '--numeric-ids',
    '--delete',
    ...(parsed.kind === 'remote' ? ['-e', options.sshCommand ?? defaultSshCommand] : []),
    `${source.replace(/\/+$/, '')}/`,
    `${target.replace(/\/+$/, '')}/`,
  ];
  try {
    await run(requireTool('rsync', 'rsync'), args, {
      env: { LC_ALL: 'C' },
      discardStdout: true,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    if (error.isCanceled) {
      throw new DssnapError('INTERRUPTED', `Copying ${source} into ${target} was interrupted`, {
        cause: error,
      });
    }
    throw new DssnapError(
      'COPY_FAILED',
      `Copying ${source} into ${target} failed (rsync exit code ${error.exitCode_ ?? 'unknown'}): ${lastLines(error.stderr, 5)}`,
      {
        cause: error,
        hint: 'Check that the backup is readable (dssnap verify) and that the target filesystem has room.',
        details: { source, target },
      },
    );
  }
}

/** Put the copy of a backup into `target` (an empty directory): rsync a generation, or extract an archive. */
export async function materializeCopy(
  copy: BackupCopy,
  target: string,
  options: MaterializeOptions = {},
): Promise<void> {
  if (copy.format === 'tar') {
    await extractArchive(copy.location, target, options.signal ? { signal: options.signal } : {});
    return;
  }
  await copyTree(copy.location, target, options);
}

/**
 * The content of one file of the copy (`dss-version.json`), or undefined when the copy does not hold it.
 * Reads only that file (from a tar archive too). Throws BACKUP_INVALID when the copy cannot be read.
 */
export async function readCopyFile(
  copy: BackupCopy,
  relativePath: string,
  options: MaterializeOptions = {},
): Promise<string | undefined> {
  const location = parseDestination(copy.location);
  if (copy.format === 'rsync') {
    if (location.kind === 'remote') {
      const script = 'if [ -f "$1" ]; then cat -- "$1"; else exit 3; fi';
      const { stdout, exitCode } = await runRemote(
        location.host,
        ['sh', '-c', script, 'sh', `${location.path}/${relativePath}`],
        { okExitCodes: [3], ...(options.sshCommand ? { sshCommand: options.sshCommand } : {}) },
      );
      return exitCode === 3 ? undefined : stdout;
    }
    return readFile(join(location.path, relativePath), 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
  }
  const decompressor = copy.location.endsWith('.zst')
    ? [`--use-compress-program=${requireTool('zstd', 'zstd')}`]
    : copy.location.endsWith('.gz')
      ? [`--use-compress-program=${requireTool('gzip', 'gzip')}`]
      : [];
  try {
    const { stdout, stderr, exitCode } = await run(
      requireTool('tar', 'tar'),
      ['--extract', '--to-stdout', `--file=${copy.location}`, ...decompressor, `./${relativePath}`],
      { env: { LC_ALL: 'C' }, okExitCodes: [2], ...(options.signal ? { signal: options.signal } : {}) },
    );
    if (exitCode === 0) return stdout;
    // Exit 2 is both "not in the archive" and "the archive ends too early": only the first is an answer.
    if (/Not found in archive/.test(stderr) && !/Unexpected EOF|not recoverable/i.test(stderr))
      return undefined;
    throw unreadableArchive(copy.location, stderr);
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    throw unreadableArchive(copy.location, error.stderr, error);
  }
}

function unreadableArchive(archive: string, stderr: string, cause?: unknown): DssnapError {
  return new DssnapError('BACKUP_INVALID', `The archive ${archive} cannot be read: ${lastLines(stderr, 3)}`, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'The archive is damaged or missing: dssnap verify tells which backups are sound. Nothing was changed.',
    details: { archive },
  });
}
