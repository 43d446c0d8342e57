import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../output.js';

export interface VerifyArgs extends GlobalArgs {
  backupId?: string;
  all?: boolean;
  to?: string;
  stateDir: string;
  dataDir?: string;
  restoreTest?: boolean;
  tempDir?: string;
  snapshotDir?: string;
}

export const verifyCommand: CommandModule<GlobalArgs, VerifyArgs> = {
  command: 'verify [backup-id]',
  describe: 'Re-read backups and report missing, changed and extra files (and the Govern database dump)',
  builder: (yargs) =>
    yargs
      .positional('backup-id', { type: 'string', describe: 'The backup to verify' })
      .option('all', { type: 'boolean', describe: 'Verify every backup of the catalog' })
      .option('to', { type: 'string', describe: 'The backup destination' })
      .option('state-dir', { type: 'string', default: '/var/lib/dssnap', describe: 'State dir' })
      .option('data-dir', { type: 'string', describe: 'With --all: only the backups of this DATA_DIR' })
      .option('restore-test', {
        type: 'boolean',
        describe: 'Also restore into a temp dir, compare, check the DSS layout and version, remove it',
      })
      .option('temp-dir', { type: 'string', describe: 'Where --restore-test unpacks (default: system temp)' })
      .option('snapshot-dir', {
        type: 'string',
        describe: 'btrfs: the snapshot directory (snapshot-only backups)',
      })
      .example('$0 verify --all --to /backups/dss', 'Every backup')
      .example(
        '$0 verify ID --to /backups/dss --restore-test',
        'One backup, restored into a temp dir too',
      ) as never,
  handler: async (argv) => {
    const { handleVerify } = await import('../handlers/verify.js');
    process.exitCode = await handleVerify(argv);
  },
};
