import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../output.js';
import { withRetentionOptions } from '../shared-options.js';

export interface PruneArgs extends GlobalArgs {
  to?: string;
  stateDir: string;
  dataDir?: string;
  provider?: string;
  snapshotDir?: string;
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  timeZone?: string;
  dryRun?: boolean;
  sshCommand?: string;
}

export const pruneCommand: CommandModule<GlobalArgs, PruneArgs> = {
  command: 'prune',
  describe:
    'Apply a retention policy (restic semantics) to generations, archives and retained snapshots; never the newest',
  builder: (yargs) =>
    withRetentionOptions(yargs)
      .option('to', { type: 'string', describe: 'The backup destination' })
      .option('state-dir', {
        type: 'string',
        default: '/var/lib/dssnap',
        describe: 'State dir (locks, catalog)',
      })
      .option('data-dir', { type: 'string', describe: 'Only the backups of this DATA_DIR' })
      .option('provider', {
        type: 'string',
        describe: "Also this provider's retained snapshots no backup names",
      })
      .option('snapshot-dir', { type: 'string', describe: 'btrfs: the snapshot directory' })
      .option('dry-run', { type: 'boolean', describe: 'Print what would be kept (and why) and removed' })
      .option('ssh-command', { type: 'string', describe: 'ssh command for a remote destination' })
      .example(
        '$0 prune --to /backups/dss --keep-last 3 --keep-daily 7 --keep-weekly 4 --keep-monthly 6 --dry-run',
        'What the policy keeps, and why',
      ) as never,
  handler: async (argv) => {
    const { handlePrune } = await import('../handlers/prune.js');
    process.exitCode = await handlePrune(argv);
  },
};
