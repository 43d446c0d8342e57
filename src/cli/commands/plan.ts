import type { CommandModule } from 'yargs';
import { withBackupOptions } from '../backup-options.js';
import type { GlobalArgs } from '../output.js';

export const planCommand: CommandModule<GlobalArgs, GlobalArgs & Record<string, unknown>> = {
  command: 'plan',
  describe:
    'Print every step a backup with these options would take, and what each exclusion class leaves out; changes nothing',
  builder: (yargs) =>
    withBackupOptions(yargs).example(
      '$0 plan --data-dir /data/dss --to /backups/dss',
      'Dry run of a snapshot backup',
    ) as never,
  handler: async (argv) => {
    const { handlePlan } = await import('../handlers/plan.js');
    process.exitCode = await handlePlan(argv);
  },
};
