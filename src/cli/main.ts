#!/usr/bin/env node
/**
 * The `dssnap` command line. Only yargs and the command definitions load at start-up; each command's
 * implementation (and any cloud SDK) is imported when that command runs, so `--help` stays fast.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commands } from './commands/index.js';

const cli = yargs(hideBin(process.argv))
  .scriptName('dssnap')
  .usage('$0 <command> [options]\n\nSafe, fast backups of Dataiku DSS data directories.')
  .option('config', {
    type: 'string',
    describe: 'YAML or JSON file with options (flags and DSSNAP_* env vars win)',
  })
  .option('json', { type: 'boolean', describe: 'Print the result as JSON on stdout (for CI pipelines)' })
  .option('log-format', {
    choices: ['pretty', 'json'] as const,
    describe: 'Log format on stderr (default: pretty on a TTY, json otherwise)',
  })
  .option('log-level', {
    choices: ['debug', 'info', 'warn', 'error', 'silent'] as const,
    describe: 'Log level (default info)',
  })
  .demandCommand(1, 'Name a command: dssnap <command> --help shows its options.')
  .strict()
  .recommendCommands()
  .epilogue(
    'Exit codes: 0 done, 2 done with warnings, 1 failed (everything undone), 3 bad usage or config, 4 locked, 5 refused by preflight, 130 interrupted.',
  )
  .wrap(Math.min(110, process.stdout.columns ?? 110))
  .fail((message, error) => {
    if (error) throw error;
    process.stderr.write(`dssnap: ${message}\n  hint: run 'dssnap --help' or 'dssnap <command> --help'.\n`);
    process.exit(3);
  });

for (const command of commands) cli.command(command);

await cli.parseAsync();
