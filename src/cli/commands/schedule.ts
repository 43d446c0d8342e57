import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../output.js';

export interface ScheduleArgs extends GlobalArgs {
  cron?: string;
  name?: string;
  root: string;
  init?: 'systemd' | 'cron';
  logFile?: string;
  dryRun?: boolean;
  remove?: boolean;
  list?: boolean;
  '--'?: (string | number)[];
  _: (string | number)[];
}

export const scheduleCommand: CommandModule<GlobalArgs, ScheduleArgs> = {
  command: 'schedule',
  describe:
    'Run a backup (or prune, verify) on a cron schedule: a systemd timer, or a cron.d entry without systemd',
  builder: (yargs) =>
    yargs
      .parserConfiguration({ 'populate--': true })
      .option('cron', { type: 'string', describe: "Cron expression, e.g. '15 6 * * 1-5' (local time)" })
      .option('name', { type: 'string', describe: 'Schedule name (default: from --data-dir)' })
      .option('root', { type: 'string', default: '/', describe: 'Root of the target system (tests)' })
      .option('init', { choices: ['systemd', 'cron'] as const, describe: 'Default: systemd if it runs' })
      .option('log-file', { type: 'string', describe: 'Default /var/log/dssnap/<name>.log' })
      .option('dry-run', { type: 'boolean', describe: 'Print the files; write nothing' })
      .option('remove', { type: 'boolean', describe: 'Remove the schedule --name' })
      .option('list', { type: 'boolean', describe: 'List the schedules' })
      .example(
        "$0 schedule --cron '15 6 * * 1-5' -- backup --data-dir /data/dss --to /backups/dss",
        'Weekdays at 06:15',
      )
      .example('$0 schedule --remove --name dss', 'Remove it') as never,
  handler: async (argv) => {
    const { handleSchedule } = await import('../handlers/schedule.js');
    process.exitCode = await handleSchedule(argv);
  },
};
