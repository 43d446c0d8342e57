import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../output.js';

export interface RecoverArgs extends GlobalArgs {
  stateDir: string;
}

export const recoverCommand: CommandModule<GlobalArgs, RecoverArgs> = {
  command: 'recover',
  describe:
    'Finish or undo what a killed run left: start DSS, thaw, unmount, release and delete what it created',
  builder: (yargs) =>
    yargs
      .option('state-dir', { type: 'string', default: '/var/lib/dssnap', describe: 'Where the journals are' })
      .example('$0 recover', 'Undo every dead run found in /var/lib/dssnap/journal') as never,
  handler: async (argv) => {
    const { handleRecover } = await import('../handlers/recover.js');
    process.exitCode = await handleRecover(argv);
  },
};
