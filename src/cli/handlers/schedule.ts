/** `dssnap schedule`: validate, show the next runs, write (or print, or remove) the schedule's files. */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { backupOptionsSchema, kebabCase } from '../../config.js';
import { DssnapError } from '../../errors.js';
import { nextRuns, parseCron } from '../../schedule/cron.js';
import { installSchedule, listSchedules, planSchedule, removeSchedule } from '../../schedule/install.js';
import { checkScheduledArgs, nameFromDataDir, type ScheduleSpec } from '../../schedule/units.js';
import type { ScheduleArgs } from '../commands/schedule.js';
import { loggerFor } from '../context.js';
import { printJson, reportFailure } from '../output.js';

export async function handleSchedule(argv: ScheduleArgs): Promise<number> {
  const log = loggerFor(argv);
  try {
    const root = resolve(argv.root);
    if (argv.list) {
      const names = await listSchedules(root);
      if (argv.json) printJson({ ok: true, schedules: names });
      else process.stdout.write(names.length > 0 ? `${names.join('\n')}\n` : 'No schedules.\n');
      return 0;
    }
    if (argv.remove) {
      if (!argv.name)
        throw new DssnapError('USAGE', '--remove needs --name', {
          hint: "'dssnap schedule --list' shows the names.",
        });
      const removed = await removeSchedule(argv.name, { root, log });
      if (argv.json) printJson({ ok: true, removed });
      else process.stdout.write(`Removed schedule '${argv.name}': ${removed.join(', ')}\n`);
      return 0;
    }
    const args = (argv['--'] ?? []).map(String);
    if (!argv.cron)
      throw new DssnapError('USAGE', 'No --cron expression', { hint: "e.g. --cron '15 6 * * 1-5'" });
    const cron = parseCron(argv.cron);
    checkScheduledArgs(args);
    checkBackupArgs(args);
    const name = argv.name ?? nameFromArgs(args);
    const spec: ScheduleSpec = {
      name,
      cron,
      args,
      node: process.execPath,
      cli: fileURLToPath(new URL('../main.js', import.meta.url)),
      logFile: argv.logFile ?? `/var/log/dssnap/${name}.log`,
    };
    const runs = nextRuns(cron, 5);
    const target = { root, ...(argv.init ? { init: argv.init } : {}), log };
    const result = argv.dryRun ? planSchedule(spec, target) : await installSchedule(spec, target);
    if (argv.json) {
      printJson({
        ok: true,
        dryRun: argv.dryRun ?? false,
        name,
        ...result,
        nextRuns: runs.map((d) => d.toISOString()),
      });
      return 0;
    }
    const lines = [
      `${argv.dryRun ? 'Would write' : 'Wrote'} schedule '${name}' (${result.init}${result.activated ? ', timer enabled and started' : ''}): ${cron.expression}`,
      'Next runs:',
      ...runs.map((d) => `  ${d.toString()}`),
    ];
    if (argv.dryRun)
      for (const file of result.files) lines.push('', `# ${file.path}`, file.content.trimEnd());
    else lines.push(...result.files.map((f) => `  ${f.path}`));
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } catch (error) {
    return reportFailure(error, argv, log);
  }
}

/**
 * A scheduled backup's options must be ones `backup` knows: a typo would otherwise fail at 2 a.m.
 * Throws USAGE naming the unknown option.
 */
function checkBackupArgs(args: readonly string[]): void {
  if (args[0] !== 'backup') return;
  const parsed = yargs([...args.slice(1)])
    .help(false)
    .version(false)
    .parseSync() as Record<string, unknown>;
  const known = new Set([
    ...Object.keys(backupOptionsSchema.shape),
    'config',
    'json',
    'logFormat',
    'logLevel',
  ]);
  const unknown = Object.keys(parsed).filter(
    (key) => key !== '_' && key !== '$0' && !key.includes('-') && !known.has(key),
  );
  if (unknown.length > 0) {
    throw new DssnapError(
      'USAGE',
      `The scheduled backup has unknown option(s): ${unknown.map((k) => `--${kebabCase(k)}`).join(', ')}`,
      {
        hint: "'dssnap backup --help' lists the valid options.",
      },
    );
  }
}

/** The name of a schedule from its command's --data-dir; USAGE when there is none. */
function nameFromArgs(args: readonly string[]): string {
  const index = args.findIndex((a) => a === '--data-dir' || a.startsWith('--data-dir='));
  const value =
    index < 0 ? undefined : args[index]!.includes('=') ? args[index]!.split('=')[1] : args[index + 1];
  if (!value) {
    throw new DssnapError(
      'USAGE',
      'Give the schedule a --name (the scheduled command has no --data-dir to name it after)',
      {
        hint: 'e.g. --name nightly',
      },
    );
  }
  return nameFromDataDir(value);
}
