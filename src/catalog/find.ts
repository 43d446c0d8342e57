/**
 * Finding backups in the catalogs: a local destination's `DEST/.dssnap/catalog/` and the state dir's
 * `catalog/` (snapshot-only runs, remote destinations). An unknown id is an error that lists the
 * nearest known ids.
 */
import { join, resolve } from 'node:path';
import { parseDestination } from '../copy/destination.js';
import { DssnapError } from '../errors.js';
import { catalogDir, type Manifest, readManifests } from './manifest.js';

export interface CatalogedBackup {
  manifest: Manifest;
  /** The catalog directory holding the manifest (and the file index, when there is one). */
  catalogDir: string;
}

export interface CatalogLocation {
  /** A backup destination (local dir or `host:/path`). */
  to?: string;
  stateDir: string;
}

/** The catalog directories to read for these options: the destination's (if local), then the state dir's. */
export function catalogDirs(location: CatalogLocation): string[] {
  const destination = location.to ? parseDestination(location.to) : undefined;
  return [
    ...(destination?.kind === 'local' ? [catalogDir(resolve(destination.path))] : []),
    join(location.stateDir, 'catalog'),
  ];
}

/**
 * Every catalogued backup of the location, oldest first; for a remote destination only those whose copy
 * is there. With `dataDir`, only that DATA_DIR's. A manifest found in two catalogs counts once.
 */
export async function listBackups(location: CatalogLocation, dataDir?: string): Promise<CatalogedBackup[]> {
  const seen = new Set<string>();
  const backups: CatalogedBackup[] = [];
  for (const dir of catalogDirs(location)) {
    for (const manifest of await readManifests(dir)) {
      if (seen.has(manifest.id)) continue;
      seen.add(manifest.id);
      backups.push({ manifest, catalogDir: dir });
    }
  }
  const destination = location.to ? parseDestination(location.to) : undefined;
  return backups
    .filter(({ manifest }) => dataDir === undefined || manifest.dataDir === resolve(dataDir))
    .filter(
      ({ manifest, catalogDir: dir }) =>
        destination?.kind !== 'remote' ||
        dir !== join(location.stateDir, 'catalog') ||
        !manifest.copy ||
        manifest.copy.location.startsWith(`${location.to!.replace(/\/+$/, '')}/`),
    )
    .sort((a, b) => a.manifest.startedAt.localeCompare(b.manifest.startedAt));
}

/**
 * The backup `id`. Throws NOT_FOUND listing up to five nearest ids (and how to list them all) when no
 * catalog of the location holds it.
 */
export async function findBackup(id: string, location: CatalogLocation): Promise<CatalogedBackup> {
  const backups = await listBackups(location);
  const found = backups.find((b) => b.manifest.id === id);
  if (found) return found;
  const nearest = nearestIds(
    id,
    backups.map((b) => b.manifest.id),
  );
  const where = location.to ? `${location.to} (and ${location.stateDir})` : location.stateDir;
  throw new DssnapError('NOT_FOUND', `No backup '${id}' in the catalog of ${where}`, {
    hint:
      nearest.length > 0
        ? `Nearest backup ids: ${nearest.join(', ')}. 'dssnap list --to ${location.to ?? 'DEST'}' lists them all.`
        : `The catalog is empty. Check --to${location.to ? '' : ' (not given)'} and --state-dir.`,
    details: { id, nearest },
  });
}

/**
 * Up to `count` ids closest to `id`: longest common prefix first (backup ids start with their time),
 * then edit distance. Pure.
 */
export function nearestIds(id: string, ids: readonly string[], count = 5): string[] {
  const prefix = (a: string, b: string): number => {
    let n = 0;
    while (n < a.length && n < b.length && a[n] === b[n]) n++;
    return n;
  };
  return [...ids]
    .map((candidate) => ({ candidate, prefix: prefix(id, candidate), distance: editDistance(id, candidate) }))
    .sort((a, b) => b.prefix - a.prefix || a.distance - b.distance || a.candidate.localeCompare(b.candidate))
    .slice(0, count)
    .map((entry) => entry.candidate);
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}
