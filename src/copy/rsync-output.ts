/**
 * Reading rsync: its exit codes (rsync(1) "EXIT VALUES"), the `--info=stats2` summary and the
 * `--info=progress2` lines. Pure functions.
 */
import type { CopyProgress } from './types.js';

/** rsync(1) EXIT VALUES, in rsync's own words. */
export const rsyncExitMeanings: Readonly<Record<number, string>> = {
  1: 'syntax or usage error',
  2: 'protocol incompatibility',
  3: 'errors selecting input/output files, dirs',
  4: 'requested action not supported',
  5: 'error starting client-server protocol',
  6: 'daemon unable to append to log-file',
  10: 'error in socket I/O',
  11: 'error in file I/O',
  12: 'error in rsync protocol data stream',
  13: 'errors with program diagnostics',
  14: 'error in IPC code',
  20: 'received SIGUSR1 or SIGINT',
  21: 'some error returned by waitpid()',
  22: 'error allocating core memory buffers',
  23: 'partial transfer due to error',
  24: 'partial transfer due to vanished source files',
  25: 'the --max-delete limit stopped deletions',
  30: 'timeout in data send/receive',
  35: 'timeout waiting for daemon connection',
  // Not rsync's own: the exit code of the remote shell when the remote side could not run rsync.
  127: 'rsync not found (on the remote host?)',
  255: 'ssh connection failed',
};

export type RsyncOutcome = 'ok' | 'warning' | 'failed';

/**
 * 0 is success; 23 and 24 are warnings — on a live filesystem files vanish or turn unreadable during a
 * copy, and the rest of the copy is sound (rsnapshot's choice); anything else failed.
 */
export function classifyRsyncExit(exitCode: number): RsyncOutcome {
  if (exitCode === 0) return 'ok';
  if (exitCode === 23 || exitCode === 24) return 'warning';
  return 'failed';
}

export function rsyncExitMeaning(exitCode: number): string {
  return rsyncExitMeanings[exitCode] ?? 'unknown exit code';
}

export interface RsyncStats {
  /** "Number of files": every entry (files, directories, links…). */
  files: number;
  /** "Total file size". */
  totalBytes: number;
  /** "Total transferred file size": file data that was not hard-linked or already there. */
  transferredBytes: number;
}

/**
 * The numbers of rsync's `--info=stats2` summary. Digit separators (`,` `.` `'`) are ignored, whatever the
 * locale. Missing lines read as 0 (a run that failed before the summary).
 */
export function parseRsyncStats(output: string): RsyncStats {
  const number = (label: string): number => {
    const match = new RegExp(`^${label}: ([\\d,.']+)`, 'm').exec(output);
    return match ? Number(match[1]!.replace(/[,.']/g, '')) : 0;
  };
  return {
    files: number('Number of files'),
    totalBytes: number('Total file size'),
    transferredBytes: number('Total transferred file size'),
  };
}

const rateUnits: Readonly<Record<string, number>> = {
  B: 1,
  kB: 1024,
  KB: 1024,
  MB: 1024 ** 2,
  GB: 1024 ** 3,
  TB: 1024 ** 4,
};

/**
 * One `--info=progress2` update, e.g. `  3,145,731 100%  750.00MB/s    0:00:00 (xfr#2, to-chk=0/4)`,
 * or undefined for any other line.
 */
export function parseProgressLine(line: string): CopyProgress | undefined {
  const match = /^\s*([\d,.']+)\s+(\d{1,3})%\s+([\d.,]+)([kKMGT]?B)\/s\b/.exec(line);
  if (!match) return undefined;
  // rsync prints the rate with two decimals, using the locale's decimal mark.
  const rate = Number(match[3]!.replace(',', '.')) * (rateUnits[match[4]!] ?? 1);
  return {
    bytes: Number(match[1]!.replace(/[,.']/g, '')),
    percent: Number(match[2]),
    rate: Math.round(rate),
  };
}
