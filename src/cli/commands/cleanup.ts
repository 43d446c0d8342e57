import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../output.js';

export interface CleanupArgs extends GlobalArgs {
  provider: string;
  stateDir: string;
  dataDir?: string;
  snapshotDir?: string;
  dryRun?: boolean;
}

export const cleanupCommand: CommandModule<GlobalArgs, CleanupArgs> = {
  command: 'cleanup',
  describe: 'Find resources tagged by dssnap whose run is not alive (not retained) and delete them',
  builder: (yargs) =>
    yargs
      .option('provider', { type: 'string', demandOption: true, describe: 'Provider to search' })
      .option('state-dir', {
        type: 'string',
        default: '/var/lib/dssnap',
        describe: 'State dir (locks of live runs)',
      })
      .option('data-dir', { type: 'string', describe: 'Only resources of this DATA_DIR' })
      .option('snapshot-dir', { type: 'string', describe: 'btrfs: the snapshot directory' })
      .option('dry-run', { type: 'boolean', describe: 'List what would be deleted; change nothing' })
      .example(
        '$0 cleanup --provider btrfs --data-dir /data/dss --dry-run',
        'What a crashed run left',
      ) as never,
  handler: async (argv) => {
    const { handleCleanup } = await import('../handlers/cleanup.js');
    process.exitCode = await handleCleanup(argv);
  },
};
