/**
 * Which backups a live dssnap process is reading (a restore, a verify): `prune` never removes those.
 * A marker file `<stateDir>/in-use/<backupId>.<pid>.json` holds the process identity; a marker whose
 * process is gone does not count (and is removed by the next `backupsInUse`).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { currentProcessIdentity, mayStillRun, type ProcessIdentity } from '../procedure/process-identity.js';

interface Marker extends ProcessIdentity {
  backupId: string;
  purpose: string;
  since: string;
}

/** Mark `backupId` as used by this process for `purpose`. Returns the release function (idempotent). */
export function markInUse(stateDir: string, backupId: string, purpose: string): () => void {
  const dir = join(stateDir, 'in-use');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${backupId}.${process.pid}.json`);
  const marker: Marker = { backupId, purpose, since: new Date().toISOString(), ...currentProcessIdentity() };
  writeFileSync(path, `${JSON.stringify(marker)}\n`);
  return () => rmSync(path, { force: true });
}

/** Backup id → purposes, for every marker whose process may still run. Removes dead markers. */
export function backupsInUse(stateDir: string): Map<string, string[]> {
  const dir = join(stateDir, 'in-use');
  const result = new Map<string, string[]>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return result;
  }
  for (const name of names.filter((n) => n.endsWith('.json'))) {
    const path = join(dir, name);
    let marker: Marker;
    try {
      marker = JSON.parse(readFileSync(path, 'utf8')) as Marker;
    } catch {
      continue;
    }
    if (!mayStillRun(marker)) {
      rmSync(path, { force: true });
      continue;
    }
    result.set(marker.backupId, [...(result.get(marker.backupId) ?? []), marker.purpose]);
  }
  return result;
}
