import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../output.js';
import { withDssTimeoutOptions, withGovernDbOptions, withJobsCheckOptions } from '../shared-options.js';

export const restoreCommand: CommandModule<GlobalArgs, GlobalArgs & Record<string, unknown>> = {
  command: 'restore [backup-id]',
  describe:
    'Restore a backup (or a retained snapshot) into a DATA_DIR; the live one is moved aside, never deleted',
  builder: (yargs) =>
    withGovernDbOptions(withDssTimeoutOptions(withJobsCheckOptions(yargs)), "the backup's dip.properties")
      .positional('backup-id', {
        type: 'string',
        describe: "The backup to restore ('dssnap list' shows them)",
      })
      .option('to', { type: 'string', describe: 'The backup destination whose catalog holds the backup' })
      .option('data-dir', { type: 'string', describe: 'The DATA_DIR to restore into (existing or new)' })
      .option('snapshot', {
        type: 'string',
        describe: 'Restore this retained snapshot instead (with --provider)',
      })
      .option('provider', { type: 'string', describe: 'The provider holding --snapshot' })
      .option('path-in-snapshot', {
        type: 'string',
        describe: "DATA_DIR's path inside the snapshot's filesystem (found by itself when it can be)",
      })
      .option('install-dir', {
        type: 'string',
        describe:
          'Restore elsewhere / onto a newer DSS: the DSS installation whose installer.sh -d DATA_DIR -u migrates it',
      })
      .option('owner', { type: 'string', describe: 'Give the restored tree to this user (another host)' })
      .option('clean', {
        type: 'boolean',
        describe: 'Govern: restore into a non-empty database (dumped aside first; one transaction)',
      })
      .option('start', {
        type: 'boolean',
        describe: 'Start DSS after the restore (default true; --no-start)',
      })
      .option('force', { type: 'boolean', describe: 'Stop a running DSS without the running-jobs check' })
      .option('installer-timeout', {
        type: 'string',
        describe: 'How long installer.sh may take (default 1h)',
      })
      .option('state-dir', { type: 'string', describe: 'State dir (default /var/lib/dssnap)' })
      .option('mount-root', { type: 'string', describe: 'Where snapshots are mounted (default /run/dssnap)' })
      .option('snapshot-dir', { type: 'string', describe: 'btrfs: the snapshot directory' })
      .option('ssh-command', { type: 'string', describe: 'ssh command for a remote destination' })
      .example(
        '$0 restore 20250101T020000Z-1a2b3c --to /backups/dss --data-dir /data/dss',
        'Pristine restore',
      )
      .example(
        '$0 restore ID --to /backups/dss --data-dir /new/dss --install-dir /opt/dataiku-dss-13.2.0',
        'Another path, host or newer DSS: installer.sh -u runs',
      )
      .example(
        '$0 restore --snapshot SNAP --provider btrfs --data-dir /data/dss',
        'From a retained snapshot',
      ) as never,
  handler: async (argv) => {
    const { handleRestore } = await import('../handlers/restore.js');
    process.exitCode = await handleRestore(argv);
  },
};
