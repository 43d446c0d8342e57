/**
 * (d) Peak RSS of the dssnap process during the largest backup: a first (full) dssnap backup of a big
 * generated tree, then, for the raw figure, a raw `rsync --link-dest` of the same tree (nothing changed:
 * rsync still builds the whole file list, which is what its memory grows with).
 */
import { dirname, join } from 'node:path';
import { createDssHost } from '../support/dss-host.js';
import { withResource } from './cleanup.js';
import { backupArgs, runDssnapBackup } from './dssnap-cli.js';
import type { IncrementalResult } from './incremental.js';
import { rawGeneration } from './raw-rsync.js';
import { treeTotals } from './tree-stats.js';

export interface RssConfig {
  files: number;
  bytes: number;
  volumeSizeMb: number;
}

export interface RssResult {
  files: number;
  bytes: number;
  /** VmHWM of the dssnap (node) process; rsync, its child, is not included. */
  dssnapPeakRssBytes: number;
  dssnapWallMs: number;
  /** VmHWM of the raw rsync's main process. */
  rawPeakRssBytes: number;
  rawWallMs: number;
  /** Which runs the figures come from, for the report. */
  dssnapRuns: string;
  rawRuns: string;
}

export async function measurePeakRss(config: RssConfig): Promise<RssResult> {
  const host = await createDssHost({
    storage: 'btrfs',
    generate: { files: config.files, bytes: config.bytes, seed: 1 },
    volumeSizeMb: config.volumeSizeMb,
  });
  return withResource(host, async () => {
    const generated = await treeTotals(host.dataDir);
    const backup = await runDssnapBackup(backupArgs(host));
    const raw = await rawGeneration(backup.manifest, host.dataDir, join(dirname(host.destination), 'raw'));
    return {
      ...generated,
      dssnapPeakRssBytes: backup.peakRssBytes,
      dssnapWallMs: backup.wallMs,
      rawPeakRssBytes: raw.peakRssBytes,
      rawWallMs: raw.wallMs,
      dssnapRuns: 'a first (full) dssnap backup',
      rawRuns: 'an rsync --link-dest of the same tree onto that generation (nothing changed)',
    };
  });
}

/** The same figures taken from an incremental measure (its first and second backups), for runs without a big tree. */
export function rssFromIncremental(r: IncrementalResult): RssResult {
  return {
    files: r.files,
    bytes: r.bytes,
    dssnapPeakRssBytes: r.dssnap.peakRssBytes,
    dssnapWallMs: r.dssnap.firstWallMs,
    rawPeakRssBytes: r.raw.peakRssBytes,
    rawWallMs: r.raw.wallMs,
    dssnapRuns: "the incremental measure's first (full) and second dssnap backups",
    rawRuns: 'its raw rsync --link-dest runs',
  };
}
