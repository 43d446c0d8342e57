import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../output.js';

export interface ListArgs extends GlobalArgs {
  to?: string;
  stateDir?: string;
  provider?: string;
  dataDir?: string;
  snapshotDir?: string;
}

export const listCommand: CommandModule<GlobalArgs, ListArgs> = {
  command: 'list',
  describe: 'List the backups in a destination (and retained snapshots with --provider)',
  builder: (yargs) =>
    yargs
      .option('to', { type: 'string', describe: 'Destination whose catalog to list' })
      .option('state-dir', {
        type: 'string',
        describe: 'State dir (snapshot-only backups are catalogued there)',
        default: '/var/lib/dssnap',
      })
      .option('provider', { type: 'string', describe: 'Also list the retained snapshots of this provider' })
      .option('data-dir', { type: 'string', describe: 'Only backups of this DATA_DIR' })
      .option('snapshot-dir', { type: 'string', describe: 'btrfs: the snapshot directory' })
      .example('$0 list --to /backups/dss', 'Table of backups')
      .example('$0 list --to /backups/dss --json', 'The manifests as JSON') as never,
  handler: async (argv) => {
    const { handleList } = await import('../handlers/list.js');
    process.exitCode = await handleList(argv);
  },
};
