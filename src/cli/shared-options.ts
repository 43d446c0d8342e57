/**
 * Flags that several commands take with the same meaning: one definition each, so `backup`, `restore` and
 * `prune` cannot drift apart in names or help.
 */
import type { Argv } from 'yargs';

/** The keep-* policy (restic semantics) of `prune` and `backup --prune`. */
export function withRetentionOptions<T>(yargs: Argv<T>) {
  return yargs
    .option('keep-last', { type: 'number', describe: 'Retention: keep the n newest backups' })
    .option('keep-hourly', { type: 'number', describe: 'Retention: the newest of each of the n last hours' })
    .option('keep-daily', { type: 'number', describe: 'Retention: the newest of each of the n last days' })
    .option('keep-weekly', { type: 'number', describe: 'Retention: … of the n last ISO weeks' })
    .option('keep-monthly', { type: 'number', describe: 'Retention: … of the n last months' })
    .option('keep-yearly', {
      type: 'number',
      describe: 'Retention: … of the n last years (-1: every period)',
    })
    .option('time-zone', {
      type: 'string',
      describe: "Retention: IANA zone in which days and weeks are counted (default: this host's)",
    });
}

/** The running-jobs check made before DSS is stopped (`backup`, `restore`). */
export function withJobsCheckOptions<T>(yargs: Argv<T>) {
  return yargs
    .option('dss-url', {
      type: 'string',
      describe: 'DSS base URL for the running-jobs check (http://localhost:11200)',
    })
    .option('dss-api-key-file', {
      type: 'string',
      describe: 'File holding the DSS API key (or set DSSNAP_DSS_API_KEY); never a flag value',
    })
    .option('wait-for-jobs', {
      type: 'string',
      describe: 'Wait up to this long for running jobs to finish (e.g. 10m)',
    });
}

/** How long `bin/dss stop` and `start` may take. */
export function withDssTimeoutOptions<T>(yargs: Argv<T>) {
  return yargs
    .option('stop-timeout', { type: 'string', describe: 'How long bin/dss stop may take (default 3m)' })
    .option('start-timeout', { type: 'string', describe: 'How long bin/dss start may take (default 5m)' });
}

/** A Govern node's PostgreSQL database; `defaultSource` says where it is read from when not given. */
export function withGovernDbOptions<T>(yargs: Argv<T>, defaultSource: string) {
  return yargs
    .option('govern-db', {
      type: 'string',
      describe: `Govern: the PostgreSQL database postgresql://USER@HOST:PORT/DB (default: ${defaultSource})`,
    })
    .option('govern-db-password-file', {
      type: 'string',
      describe:
        'File holding the Govern database password (or DSSNAP_GOVERN_DB_PASSWORD); never a flag value',
    });
}
