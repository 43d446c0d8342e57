import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../output.js';

export interface DoctorArgs extends GlobalArgs {
  mode?: 'snapshot' | 'cold';
  provider?: string;
  dataDir?: string;
  format?: 'rsync' | 'tar';
  stateDir: string;
  permissions?: boolean;
}

export const doctorCommand: CommandModule<GlobalArgs, DoctorArgs> = {
  command: 'doctor',
  describe: 'Check tools, privileges and kernel features for a mode and provider; changes nothing',
  builder: (yargs) =>
    yargs
      .option('mode', { choices: ['snapshot', 'cold'] as const })
      .option('provider', { type: 'string' })
      .option('data-dir', {
        type: 'string',
        describe: 'Also check this DATA_DIR: DSS layout, provider, volume',
      })
      .option('format', { choices: ['rsync', 'tar'] as const })
      .option('state-dir', { type: 'string', default: '/var/lib/dssnap' })
      .option('permissions', {
        type: 'boolean',
        describe: 'Only the cloud permissions the provider needs: action, allowed/denied, why',
      })
      .example('$0 doctor --data-dir /data/dss', 'Everything a snapshot backup of /data/dss needs')
      .example(
        '$0 doctor --provider aws --permissions',
        'Each EC2 action dssnap calls, checked with DryRun',
      ) as never,
  handler: async (argv) => {
    const { handleDoctor } = await import('../handlers/doctor.js');
    process.exitCode = await handleDoctor(argv);
  },
};
