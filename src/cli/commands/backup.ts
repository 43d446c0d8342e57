import type { CommandModule } from 'yargs';
import { withBackupOptions } from '../backup-options.js';
import type { GlobalArgs } from '../output.js';

export const backupCommand: CommandModule<GlobalArgs, GlobalArgs & Record<string, unknown>> = {
  command: 'backup',
  describe: 'Back up a DSS data directory (snapshot mode by default, or --mode cold)',
  builder: (yargs) =>
    withBackupOptions(yargs)
      .example(
        '$0 backup --data-dir /data/dss --to /backups/dss',
        'Snapshot backup, provider detected (btrfs)',
      )
      .example('$0 backup --data-dir /data/dss --to /backups/dss --mode cold', 'Stop DSS, copy, start DSS')
      .example(
        '$0 backup --data-dir /data/dss --to /backups/dss --format tar',
        'One zstd archive instead of an rsync generation',
      )
      .example(
        '$0 backup --data-dir /data/dss --copy none --keep-snapshot',
        'Pre-upgrade rollback point: a retained snapshot, seconds',
      ) as never,
  handler: async (argv) => {
    const { handleBackup } = await import('../handlers/backup.js');
    process.exitCode = await handleBackup(argv);
  },
};
