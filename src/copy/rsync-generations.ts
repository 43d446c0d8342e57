/**
 * rsnapshot-style generations: every backup is `DEST/<backupId>/`, a full browsable tree whose unchanged
 * files are hard links into the previous generation (`rsync --link-dest`), so they cost no space.
 * A generation is written as `DEST/.partial-<backupId>/` and renamed only once rsync succeeded: a killed
 * or failed run never leaves anything that looks like a complete generation.
 */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DssnapError } from '../errors.js';
import { CommandError, lastLines, requireTool, run } from '../host/exec.js';
import { type Logger, silentLogger } from '../log.js';
import { assertBackupId, partialName } from './backup-id.js';
import { assertSourceDirectory } from './copy-source.js';
import { type Destination, formatDestination, parseDestination } from './destination.js';
import { assertExcludePatterns } from './exclude-patterns.js';
import {
  defaultSshCommand,
  remoteListDirectories,
  remotePrepareDirectory,
  remoteRemove,
  runRemote,
} from './remote-shell.js';
import { classifyRsyncExit, parseProgressLine, parseRsyncStats, rsyncExitMeaning } from './rsync-output.js';
import type { CopyProgress, CopyResult } from './types.js';

export interface GenerationOptions {
  /** Directory whose content is copied (a mounted snapshot, or the stopped DATA_DIR). */
  source: string;
  /** Local directory or `[user@]host:/path`; created if missing. */
  destination: string;
  backupId: string;
  /** The generation to hard-link unchanged files against; a full copy when absent or not found. */
  previousBackupId?: string;
  /** rsync patterns anchored at the source root (`/tmp/`, `*.pyc`). */
  excludes: readonly string[];
  /** ssh command line for remote destinations (`ssh -p 2222 -i /root/.ssh/backup`). */
  sshCommand?: string;
  signal?: AbortSignal;
  onProgress?: (progress: CopyProgress) => void;
  log?: Logger;
}

/** rsync options of every generation: archive with hard links, ACLs, xattrs, numeric owners. */
export const rsyncBaseArgs = [
  '-aHAX',
  '--numeric-ids',
  '--delete',
  '--delete-excluded',
  '--info=progress2,stats2',
];

/**
 * Copy `source` into a new generation `DEST/<backupId>/`. Returns when the generation is complete and
 * renamed into place. rsync exit 23/24 (files unreadable or vanished on a live filesystem) come back as
 * `warnings`. Throws DESTINATION_INVALID when the generation already exists, COPY_FAILED for any other rsync
 * failure, INTERRUPTED when `signal` aborts, TOOL_MISSING without rsync; after a throw the partial
 * generation may remain: `removePartialGeneration` is the undo step. Not idempotent (a second call with the
 * same id fails), but a partial left by an earlier attempt with the same id is reused and completed.
 */
export async function createGeneration(options: GenerationOptions): Promise<CopyResult> {
  const log = options.log ?? silentLogger();
  const { backupId, previousBackupId } = options;
  assertBackupId(backupId);
  if (previousBackupId !== undefined) assertBackupId(previousBackupId);
  assertExcludePatterns(options.excludes);
  const rsync = requireTool('rsync', 'rsync');
  const destination = parseDestination(options.destination);
  const source = await assertSourceDirectory(options.source);
  const sshCommand = options.sshCommand ?? defaultSshCommand;
  const location = formatDestination(destination, backupId);
  const warnings: string[] = [];

  const previousExists = await prepareDestination(destination, backupId, previousBackupId, sshCommand);
  const linkDest: string[] = [];
  if (previousBackupId !== undefined && previousExists) {
    const previousPath =
      destination.kind === 'local'
        ? join(destination.path, previousBackupId)
        : `${destination.path}/${previousBackupId}`;
    linkDest.push(`--link-dest=${previousPath}`);
  } else if (previousBackupId !== undefined) {
    const warning = `The previous generation ${formatDestination(destination, previousBackupId)} was not found: this generation is a full copy`;
    log.warn(
      { previousBackupId, destination: options.destination },
      'Previous generation not found; full copy',
    );
    warnings.push(warning);
  }

  const target = formatDestination(destination, partialName(backupId));
  const args = [
    ...rsyncBaseArgs,
    ...linkDest,
    ...options.excludes.map((pattern) => `--exclude=${pattern}`),
    ...(destination.kind === 'remote' ? ['-e', sshCommand] : []),
    `${source}/`,
    // rsync reads `name:...` as remote; a local path with a colon before its first slash cannot occur
    // here because parseDestination made local paths absolute.
    target,
  ];
  log.info(
    { source, destination: location, previousBackupId: linkDest.length > 0 ? previousBackupId : undefined },
    'Copy started',
  );
  const started = performance.now();
  // Progress updates come once per transferred file: stream them, keep only the summary lines.
  const summary: string[] = [];
  let exitCode: number;
  let stderr: string;
  try {
    ({ stderr, exitCode } = await run(rsync, args, {
      signal: options.signal,
      okExitCodes: [23, 24],
      // Stable English messages and digit grouping, whatever the caller's locale.
      env: { LC_ALL: 'C' },
      discardStdout: true,
      onStdoutLine: (line) => {
        const progress = parseProgressLine(line);
        if (progress) options.onProgress?.(progress);
        // Summary lines start with a word ("Number of files: …"), progress lines with blanks.
        else if (/^[A-Za-z]/.test(line)) summary.push(line);
      },
    }));
  } catch (error) {
    throw copyError(error, location, target);
  }
  if (classifyRsyncExit(exitCode) === 'warning') {
    const detail = lastLines(stderr, 5);
    warnings.push(
      `rsync exited with code ${exitCode} (${rsyncExitMeaning(exitCode)})${detail ? `: ${detail}` : ''}`,
    );
    log.warn({ exitCode, stderr: detail }, 'rsync completed with warnings');
  }

  await publish(destination, backupId, sshCommand);
  const stats = {
    ...parseRsyncStats(summary.join('\n')),
    durationMs: Math.round(performance.now() - started),
  };
  log.info({ location, ...stats }, 'Copy finished');
  return { location, warnings, stats };
}

/**
 * Remove `DEST/.partial-<backupId>/`, what a failed or killed `createGeneration` leaves. Idempotent:
 * returns false when there was nothing to remove, true when a partial generation was removed. Never
 * touches a complete generation.
 */
export async function removePartialGeneration(
  destination: string,
  backupId: string,
  options: { sshCommand?: string } = {},
): Promise<boolean> {
  assertBackupId(backupId);
  const parsed = parseDestination(destination);
  if (parsed.kind === 'remote') {
    return remoteRemove(parsed.host, `${parsed.path}/${partialName(backupId)}`, options);
  }
  const path = join(parsed.path, partialName(backupId));
  const existed = await stat(path).then(
    () => true,
    () => false,
  );
  // Retries: an rsync receiver that was just killed may still be closing its last file.
  await rm(path, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  return existed;
}

/**
 * Names of the complete generations in `destination`, oldest first (ids sort chronologically). Partial
 * generations and other hidden entries (`.dssnap/`) are left out; a missing destination has none.
 */
export async function listGenerations(
  destination: string,
  options: { sshCommand?: string } = {},
): Promise<string[]> {
  const parsed = parseDestination(destination);
  const names =
    parsed.kind === 'remote'
      ? await remoteListDirectories(parsed.host, parsed.path, options)
      : await readdir(parsed.path, { withFileTypes: true }).then(
          (entries) => entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name),
          (error: NodeJS.ErrnoException) => {
            if (error.code === 'ENOENT') return [];
            throw error;
          },
        );
  return names.filter((name) => !name.startsWith('.')).sort();
}

/** The newest complete generation in `destination`, or undefined when there is none. */
export async function latestGeneration(
  destination: string,
  options: { sshCommand?: string } = {},
): Promise<string | undefined> {
  return (await listGenerations(destination, options)).at(-1);
}

/**
 * Create the destination, refuse to overwrite a complete generation, and say whether the previous one
 * exists (to link against it).
 */
async function prepareDestination(
  destination: Destination,
  backupId: string,
  previousBackupId: string | undefined,
  sshCommand: string,
): Promise<boolean> {
  let exists: boolean;
  let previousExists = false;
  if (destination.kind === 'remote') {
    ({ exists, previousExists } = await remotePrepareDirectory(
      destination.host,
      destination.path,
      backupId,
      previousBackupId,
      { sshCommand },
    ).catch((error: unknown) => {
      throw sshError(error, destination, sshCommand);
    }));
  } else {
    await mkdir(destination.path, { recursive: true });
    exists = await isDirectoryEntry(join(destination.path, backupId), false);
    if (previousBackupId !== undefined)
      previousExists = await isDirectoryEntry(join(destination.path, previousBackupId), true);
  }
  if (exists) {
    throw new DssnapError(
      'DESTINATION_INVALID',
      `A backup named ${formatDestination(destination, backupId)} already exists`,
      {
        hint: 'Backup ids must be unique; a complete generation is never overwritten.',
        details: { backupId },
      },
    );
  }
  return previousExists;
}

async function isDirectoryEntry(path: string, mustBeDirectory: boolean): Promise<boolean> {
  const info = await stat(path).catch(() => undefined);
  return info !== undefined && (!mustBeDirectory || info.isDirectory());
}

/** Rename the partial generation to its final name: the moment it becomes a complete generation. */
async function publish(destination: Destination, backupId: string, sshCommand: string): Promise<void> {
  if (destination.kind === 'remote') {
    const partial = `${destination.path}/${partialName(backupId)}`;
    // -T: fail rather than move the partial *into* a directory that appeared meanwhile.
    await runRemote(destination.host, ['mv', '-T', '--', partial, `${destination.path}/${backupId}`], {
      sshCommand,
    });
    return;
  }
  await rename(join(destination.path, partialName(backupId)), join(destination.path, backupId));
}

function copyError(error: unknown, location: string, partial: string): DssnapError {
  if (!(error instanceof CommandError))
    return error instanceof DssnapError ? error : wrapUnknown(error, location);
  if (error.isCanceled) {
    return new DssnapError('INTERRUPTED', `The copy to ${location} was interrupted`, {
      cause: error,
      hint: `The partial copy ${partial} is removed by the run's clean-up ('dssnap recover' after a crash).`,
      details: { location },
    });
  }
  const code = error.exitCode_;
  const meaning = code === undefined ? 'killed by a signal' : `exit code ${code}: ${rsyncExitMeaning(code)}`;
  const detail = lastLines(error.stderr, 5);
  return new DssnapError(
    'COPY_FAILED',
    `rsync failed copying to ${location} (${meaning})${detail ? `: ${detail}` : ''}`,
    {
      cause: error,
      hint: `Check that the destination is reachable, writable and has free space. The partial copy ${partial} is removed by the run's clean-up.`,
      details: { location, exitCode: code, timedOut: error.timedOut },
    },
  );
}

/** A failed ssh round trip, with what to check (the usual cause is a key or host key not set up). */
function sshError(error: unknown, destination: Destination, sshCommand: string): unknown {
  if (!(error instanceof CommandError)) return error;
  const detail = lastLines(error.stderr, 3);
  return new DssnapError(
    'COPY_FAILED',
    `Cannot prepare the destination ${formatDestination(destination)} over ssh (exit code ${error.exitCode_ ?? 'unknown'})${detail ? `: ${detail}` : ''}`,
    {
      cause: error,
      hint: `Check that '${sshCommand} ${destination.kind === 'remote' ? destination.host : ''} true' works without a prompt (key in the remote authorized_keys, host key in known_hosts) and that the remote path is writable; set the ssh command for another port or identity.`,
      details: { destination: formatDestination(destination), exitCode: error.exitCode_ },
    },
  );
}

function wrapUnknown(error: unknown, location: string): DssnapError {
  return new DssnapError('COPY_FAILED', `The copy to ${location} failed: ${String(error)}`, { cause: error });
}
