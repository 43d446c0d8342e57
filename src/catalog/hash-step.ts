/**
 * The backup step that records the per-file content index (see hashes.ts): after the copy, walk the new
 * generation (reusing the previous generation's hashes for files rsync hard-linked) or read the archive
 * back, and write `<catalog>/<id>.files.jsonl.gz`. A remote copy cannot be walked here: its source (the
 * read-only snapshot, or the stopped DATA_DIR) is hashed instead, before it is released; snapshots of
 * one volume keep their inodes, so the previous remote run's index serves the same way.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Json } from '../procedure/journal.js';
import type { Runner } from '../procedure/runner.js';
import {
  emptyIndexStats,
  type IndexStats,
  indexFileName,
  readIndex,
  walkArchive,
  walkTree,
  writeIndex,
} from './hashes.js';
import type { Manifest, ManifestFileIndex } from './manifest.js';

export const hashStepKind = 'hash-files';

export interface HashStepIntent {
  /** The index file being written (removed by the undo). */
  path: string;
}

export interface HashStepInput {
  runner: Runner;
  backupId: string;
  /** Where the manifest goes: the index is written next to it. */
  catalogDir: string;
  /** What to hash: a directory tree, or an archive. */
  tree?: string;
  archive?: string;
  /**
   * The generation this one was linked to: its index gives the hashes of unchanged files (when it
   * hashed the same kind of tree: a copy, or a snapshot of the source).
   */
  previousBackupId?: string;
  source: ManifestFileIndex['source'];
  /** Paths (relative) left out of a tree walk: the excluded folders, when hashing a source. */
  skip?: (path: string) => boolean;
}

/**
 * Run the hash step; returns what the manifest records about the index. Its undo removes the index
 * file (a failed run leaves none). Dry runs return a placeholder.
 */
export async function hashFilesStep(input: HashStepInput): Promise<ManifestFileIndex> {
  const name = indexFileName(input.backupId);
  const path = join(input.catalogDir, name);
  const previous =
    input.previousBackupId !== undefined && previousSourceMatches(input)
      ? join(input.catalogDir, indexFileName(input.previousBackupId))
      : undefined;
  const intent: HashStepIntent = { path };
  return input.runner.step({
    kind: hashStepKind,
    title: `Hash every file of ${input.tree ?? input.archive} into ${path}${previous && existsSync(previous) ? ' (unchanged files: previous hashes)' : ''}`,
    intent: intent as unknown as Json,
    run: async (signal) => {
      await mkdir(input.catalogDir, { recursive: true });
      let stats: IndexStats | undefined;
      const onStats = (s: IndexStats): void => {
        stats = s;
      };
      const entries = input.archive
        ? walkArchive(input.archive, { signal, onStats })
        : walkTree(input.tree!, {
            signal,
            onStats,
            ...(previous && existsSync(previous) ? { previous: readIndex(previous) } : {}),
            ...(input.skip ? { skip: input.skip } : {}),
          });
      await writeIndex(path, entries);
      return { index: name, algorithm: 'sha256' as const, source: input.source, ...stats! };
    },
    undo: () => removeIndexFile(intent),
    preview: () => ({
      index: name,
      algorithm: 'sha256' as const,
      source: input.source,
      ...emptyIndexStats(),
    }),
  });
}

/**
 * True when the previous backup's index describes the same kind of tree as this run's: inodes are
 * compared, and those of a copy never stand for those of its source (nor the reverse).
 */
function previousSourceMatches(input: HashStepInput): boolean {
  try {
    const manifest = JSON.parse(
      readFileSync(join(input.catalogDir, `${input.previousBackupId}.json`), 'utf8'),
    ) as Partial<Manifest>;
    return manifest.files?.source === input.source;
  } catch {
    return false;
  }
}

/** Undo of the hash step (live and recovery): remove the index and its partial. Idempotent. */
export async function removeIndexFile(intent: HashStepIntent): Promise<void> {
  await rm(intent.path, { force: true });
  await rm(`${intent.path}.partial`, { force: true });
}
