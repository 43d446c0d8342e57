/**
 * (b) Incremental cost and (c) disk per generation, on one tree (plus the peak RSS of its runs, which
 * stands for (d) when no bigger tree is measured): a first dssnap backup (btrfs snapshot, full rsync
 * generation), `mutateDataDir` 1 %, then a second dssnap backup against a raw
 * `rsync -a --delete --link-dest=GEN1` of the same change from the live DATA_DIR into a sibling directory —
 * once before and once after dssnap's run, averaged, to bracket any drift of the machine. Also the cost
 * of the per-file hash index of both runs, against their copy step.
 */
import { readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { StepKind } from '../../src/backup/undo-steps.js';
import { hashStepKind } from '../../src/catalog/hash-step.js';
import { catalogDir, type Manifest } from '../../src/catalog/manifest.js';
import { mutateDataDir } from '../fixtures/generate-data-dir.js';
import { createDssHost } from '../support/dss-host.js';
import { withResource } from './cleanup.js';
import { backupArgs, runDssnapBackup, stepMs } from './dssnap-cli.js';
import { rawGeneration } from './raw-rsync.js';
import { directoryBytes, diskUsage, treeTotals } from './tree-stats.js';

export interface IncrementalConfig {
  files: number;
  bytes: number;
  volumeSizeMb: number;
}

export interface IncrementalResult {
  /** The generated DATA_DIR's regular files. */
  files: number;
  bytes: number;
  /** What the first generation holds (default exclusions applied). */
  copied: { files: number; bytes: number };
  mutation: { modified: number; added: number; deleted: number; changedBytes: number };
  dssnap: {
    /** The first, full backup (wall time of the dssnap process). */
    firstWallMs: number;
    /** The second backup, after the change: the whole dssnap process. */
    wallMs: number;
    copyStepMs: number;
    /** Every step of the second run and its duration, as its manifest records them. */
    steps: Array<{ kind: string; durationMs: number }>;
    peakRssBytes: number;
    firstPeakRssBytes: number;
  };
  raw: { wallMs: number; runsMs: number[]; peakRssBytes: number };
  /** The per-file hash index: its step against the copy step, first (full) and second (incremental) run. */
  hash: { first: HashCost; incremental: HashCost };
  disk: {
    /** What the second dssnap generation adds on disk (du of both generations, hard links counted once). */
    dssnapAddedBytes: number;
    rawAddedBytes: number;
    /** Bytes of the files modified or added by the change (apparent sizes). */
    changedBytes: number;
    /** The new generation's catalog entry (manifest, per-file index…), kept beside the generations. */
    catalogBytes: number;
    /** Blocks of the directories of the new generation: rsync never hard-links a directory. */
    newDirectoryBytes: number;
    /** The tree's metadata on disk: the directory blocks of the first generation. */
    treeMetadataBytes: number;
    /** The DESIGN target: changed bytes + 2 % of the tree's metadata. */
    allowanceBytes: number;
  };
}

export interface HashCost {
  hashMs: number;
  copyMs: number;
  /** Files read and hashed, and files whose hash came from the previous generation's index. */
  hashedFiles: number;
  hashedBytes: number;
  reusedFiles: number;
}

function hashCost(manifest: Manifest): HashCost {
  return {
    hashMs: stepMs(manifest, hashStepKind),
    copyMs: stepMs(manifest, StepKind.copy),
    hashedFiles: manifest.files?.hashedFiles ?? 0,
    hashedBytes: manifest.files?.hashedBytes ?? 0,
    reusedFiles: manifest.files?.reusedFiles ?? 0,
  };
}

export async function measureIncremental(config: IncrementalConfig): Promise<IncrementalResult> {
  const host = await createDssHost({
    storage: 'btrfs',
    generate: { files: config.files, bytes: config.bytes, seed: 1 },
    volumeSizeMb: config.volumeSizeMb,
  });
  return withResource(host, async () => {
    const generated = await treeTotals(host.dataDir);
    const first = await runDssnapBackup(backupArgs(host));
    const previous = first.manifest.copy!.location;
    const mutation = await mutateDataDir({ dataDir: host.dataDir, fraction: 0.01, seed: 7 });
    const changedBytes = await sumSizes(host.dataDir, [...mutation.modified, ...mutation.added]);

    const rawRoot = join(dirname(host.destination), 'raw');
    const rawCopy = (name: string) => rawGeneration(first.manifest, host.dataDir, join(rawRoot, name));
    const rawBefore = await rawCopy('before');
    const second = await runDssnapBackup(backupArgs(host));
    const rawAfter = await rawCopy('after');

    const generation = second.manifest.copy!.location;
    const [, dssnapAddedBytes] = await diskUsage(previous, generation);
    const [, rawAddedBytes] = await diskUsage(previous, join(rawRoot, 'before'));
    const treeMetadataBytes = await directoryBytes(previous);
    return {
      ...generated,
      copied: await treeTotals(previous),
      mutation: {
        modified: mutation.modified.length,
        added: mutation.added.length,
        deleted: mutation.deleted.length,
        changedBytes,
      },
      dssnap: {
        firstWallMs: first.wallMs,
        wallMs: second.wallMs,
        copyStepMs: stepMs(second.manifest, StepKind.copy),
        steps: second.manifest.steps.map(({ kind, durationMs }) => ({ kind, durationMs })),
        peakRssBytes: Math.max(first.peakRssBytes, second.peakRssBytes),
        firstPeakRssBytes: first.peakRssBytes,
      },
      hash: { first: hashCost(first.manifest), incremental: hashCost(second.manifest) },
      raw: {
        wallMs: (rawBefore.wallMs + rawAfter.wallMs) / 2,
        runsMs: [rawBefore.wallMs, rawAfter.wallMs],
        peakRssBytes: Math.max(rawBefore.peakRssBytes, rawAfter.peakRssBytes),
      },
      disk: {
        dssnapAddedBytes: dssnapAddedBytes!,
        rawAddedBytes: rawAddedBytes!,
        changedBytes,
        catalogBytes: await catalogBytes(host.destination, second.manifest.id),
        newDirectoryBytes: await directoryBytes(generation),
        treeMetadataBytes,
        allowanceBytes: changedBytes + 0.02 * treeMetadataBytes,
      },
    };
  });
}

async function sumSizes(root: string, paths: readonly string[]): Promise<number> {
  let total = 0;
  for (const path of paths) total += (await stat(join(root, path))).size;
  return total;
}

async function catalogBytes(destination: string, backupId: string): Promise<number> {
  const dir = catalogDir(destination);
  const names = (await readdir(dir)).filter((name) => name.startsWith(backupId));
  return sumSizes(dir, names);
}
