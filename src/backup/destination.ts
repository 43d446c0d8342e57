/**
 * Where backups go, checked before anything changes: not inside DATA_DIR (a backup would copy itself),
 * writable, and with room for what the copy will write.
 */
import { constants } from 'node:fs';
import { access, mkdir, rm, statfs, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { type Destination, parseDestination } from '../copy/destination.js';
import { formatBytes } from '../duration.js';
import { DssnapError } from '../errors.js';

export type { Destination };

/** True when `inner` is `outer` or lies below it. Pure. */
export function isWithin(inner: string, outer: string): boolean {
  const rel = relative(resolve(outer), resolve(inner));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * Validate the destination for a backup of `dataDir`. Creates the destination directory if its parent
 * exists (that is all it changes). Throws DESTINATION_INVALID with what is wrong and what to do.
 */
export async function checkDestination(raw: string, dataDir: string): Promise<Destination> {
  const parsed = parseDestination(raw);
  if (parsed.kind === 'remote') return parsed;
  const path = resolve(parsed.path);
  if (isWithin(path, dataDir)) {
    throw new DssnapError('DESTINATION_INVALID', `The destination ${path} is inside DATA_DIR ${dataDir}`, {
      hint: 'A backup inside the directory it backs up would copy itself; choose a destination outside DATA_DIR (ideally on another disk).',
    });
  }
  if (isWithin(dataDir, path)) {
    throw new DssnapError('DESTINATION_INVALID', `The destination ${path} contains DATA_DIR ${dataDir}`, {
      hint: 'Choose a dedicated backup directory that does not hold the DSS data directory.',
    });
  }
  try {
    await mkdir(path, { recursive: true, mode: 0o750 });
    await access(path, constants.W_OK);
    const probe = join(path, `.dssnap-write-test-${process.pid}`);
    await writeFile(probe, '');
    await rm(probe, { force: true });
  } catch (error) {
    throw new DssnapError(
      'DESTINATION_INVALID',
      `The destination ${path} is not writable: ${(error as Error).message}`,
      {
        hint: 'Create it and give the user running dssnap (root) write access, or pick another --to.',
        cause: error,
      },
    );
  }
  return { kind: 'local', path };
}

/** Refuse a run that would fill the destination: NO_SPACE with the numbers. */
export async function checkFreeSpace(path: string, neededBytes: number): Promise<{ freeBytes: number }> {
  const stats = await statfs(path);
  const freeBytes = Number(stats.bavail) * Number(stats.bsize);
  if (freeBytes < neededBytes) {
    throw new DssnapError(
      'NO_SPACE',
      `Not enough space in ${path}: the backup needs about ${formatBytes(neededBytes)}, ${formatBytes(freeBytes)} are free`,
      {
        hint: 'Free space (e.g. `dssnap prune`), exclude more (--exclude-class logs,other), or choose another --to. --force skips this estimate.',
        details: { neededBytes, freeBytes },
      },
    );
  }
  return { freeBytes };
}
