/** A progress bar on a TTY for long copies; silent otherwise (cron, CI, --json). */
import type { CopyProgress } from '../copy/types.js';
import { formatBytes } from '../duration.js';

export interface ProgressReporter {
  update: (progress: CopyProgress) => void;
  stop: () => void;
}

export function createProgressReporter(enabled: boolean): ProgressReporter {
  if (!enabled || !process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  let bar: import('cli-progress').SingleBar | undefined;
  let loading = false;
  return {
    update: (progress) => {
      if (!bar) {
        if (loading) return;
        loading = true;
        void import('cli-progress').then(({ default: cliProgress }) => {
          bar = new cliProgress.SingleBar(
            {
              format: 'copy [{bar}] {percentage}% | {copied} | {rate}/s',
              stream: process.stderr,
              hideCursor: true,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(100, 0, { copied: '0 B', rate: '0 B' });
        });
        return;
      }
      bar.update(progress.percent, { copied: formatBytes(progress.bytes), rate: formatBytes(progress.rate) });
    },
    stop: () => bar?.stop(),
  };
}
