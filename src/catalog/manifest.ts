/**
 * The catalog: one manifest per backup, written atomically once the backup is complete, so a listed
 * backup is always a restorable one. Local destinations keep it in `DEST/.dssnap/catalog/`; snapshot-only
 * runs (and remote destinations) keep it in the state dir.
 */
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { mkdir, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { QuiesceMode } from '../provider/types.js';

export const manifestSchemaVersion = 1;

export interface ManifestSnapshot {
  id: string;
  provider: string;
  volumeId: string;
  createdAt: string;
  retained: boolean;
}

export interface StepTiming {
  kind: string;
  title: string;
  durationMs: number;
}

export interface Manifest {
  schemaVersion: number;
  id: string;
  runId: string;
  startedAt: string;
  finishedAt: string;
  phase: 'completed' | 'completed-with-warnings';
  mode: 'snapshot' | 'cold';
  provider?: string;
  quiesce: QuiesceMode;
  dataDir: string;
  host: string;
  dss: { productVersion: string; confVersion: number; nodeType: string };
  /** Where the copy is: a generation directory or an archive; absent for snapshot-only runs. */
  copy?: { format: 'rsync' | 'tar'; location: string; compression?: 'zstd' | 'gzip'; basedOn?: string };
  snapshots: ManifestSnapshot[];
  exclusions: { classes: string[]; patterns: string[] };
  stats: { files: number; totalBytes: number; transferredBytes: number };
  /** The longest time writers of DATA_DIR were held still (quiesce → thaw/start), milliseconds. */
  pauseMs: number;
  durationMs: number;
  steps: StepTiming[];
  warnings: string[];
  /** Cloud API calls the provider made for this backup, by action (retries included). */
  apiCalls?: Record<string, number>;
  /** The per-file content index (sha256 of every file), a file next to this manifest. */
  files?: ManifestFileIndex;
  /** Govern nodes: the PostgreSQL dump taken in the same run, stored with the copy. */
  governDb?: ManifestGovernDb;
}

export interface ManifestFileIndex {
  /** File name of the index, in the same directory as the manifest (`<id>.files.jsonl.gz`). */
  index: string;
  algorithm: 'sha256';
  /** What was hashed: the copy itself (generation or archive), or the snapshot it was copied from. */
  source: 'copy' | 'snapshot';
  entries: number;
  files: number;
  bytes: number;
  /** Files read and hashed by this run; the others reused the previous generation's hash. */
  hashedFiles: number;
  hashedBytes: number;
  reusedFiles: number;
  durationMs: number;
}

export interface ManifestGovernDb {
  /** `user@host:port/database`; never a password. */
  database: string;
  /** Where the `pg_dump -Fc` file is: a path, or `host:/path` next to a remote copy. */
  location: string;
  format: 'custom';
  bytes: number;
  sha256: string;
  /** ISO-8601: when pg_dump started (its view of the database is taken at start). */
  startedAt: string;
  /** Milliseconds between the snapshot instant (or DSS stop, cold) and the dump's start. */
  lagMs: number;
  durationMs: number;
  serverVersion: string;
}

export function catalogDir(root: string): string {
  return join(root, '.dssnap', 'catalog');
}

/** Write a manifest atomically (temp file, fsync, rename): a reader never sees half a manifest. */
export async function writeManifest(dir: string, manifest: Manifest): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${manifest.id}.json`);
  const temp = join(dir, `.${manifest.id}.json.tmp`);
  const fd = openSync(temp, 'w', 0o644);
  try {
    writeSync(fd, `${JSON.stringify(manifest, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  await rename(temp, path);
  return path;
}

/** Every manifest in a catalog dir, oldest first. A missing dir is an empty catalog. */
export async function readManifests(dir: string): Promise<Manifest[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const manifests: Manifest[] = [];
  for (const name of names.filter((n) => n.endsWith('.json') && !n.startsWith('.'))) {
    manifests.push(JSON.parse(await readFile(join(dir, name), 'utf8')) as Manifest);
  }
  return manifests.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
}
