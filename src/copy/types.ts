/**
 * What every copy engine returns. The procedure stores `location` in the manifest and turns a non-empty
 * `warnings` into "completed with warnings" (exit code 2).
 */

/** One progress update of a running copy. */
export interface CopyProgress {
  /** Bytes of file data handled so far. */
  bytes: number;
  /** 0–100, as the copy tool estimates it (rsync's estimate grows while it still discovers files). */
  percent: number;
  /** Bytes per second, as the copy tool reports it. */
  rate: number;
}

export interface CopyStats {
  /** Entries in the copy: files, directories, symlinks… */
  files: number;
  /** Size of the source's file data, bytes. */
  totalBytes: number;
  /** Bytes actually written: changed file data for rsync, the compressed archive size for tar. */
  transferredBytes: number;
  durationMs: number;
}

export interface CopyResult {
  /** The complete copy: a generation directory, an archive file, or `host:/path` for a remote one. */
  location: string;
  /** Problems that did not stop the copy (files that vanished or changed while being read). */
  warnings: string[];
  stats: CopyStats;
}
