import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../output.js';

export interface DemoArgs extends GlobalArgs {
  preset: 'tiny' | 'small' | 'medium';
  keep?: boolean;
}

export const demoCommand: CommandModule<GlobalArgs, DemoArgs> = {
  command: 'demo',
  describe:
    'Generate a sample DATA_DIR on a throw-away btrfs loop volume, back it up twice (snapshot, then incremental), list, clean up',
  builder: (yargs) =>
    yargs
      .option('preset', {
        choices: ['tiny', 'small', 'medium'] as const,
        default: 'small' as const,
        describe: 'Size of the generated DATA_DIR',
      })
      .option('keep', {
        type: 'boolean',
        describe: 'Keep the demo volume and backups for a look (prints how to remove them)',
      }) as never,
  handler: async (argv) => {
    const { handleDemo } = await import('../handlers/demo.js');
    process.exitCode = await handleDemo(argv);
  },
};
