/** What every command handler starts with: a logger and its options resolved from file, env and flags. */
import {
  type BackupOptions,
  backupOptionsSchema,
  optionsFromEnv,
  readConfigFile,
  resolveOptions,
} from '../config.js';
import { DssnapError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { backupFlags } from './backup-options.js';
import type { GlobalArgs } from './output.js';

export function loggerFor(args: GlobalArgs): Logger {
  return createLogger({
    ...(args.logFormat ? { format: args.logFormat } : {}),
    ...(args.logLevel ? { level: args.logLevel } : {}),
  });
}

/**
 * Provider settings for the commands that only name a provider (list, cleanup, doctor): the config
 * file's `provider-options:` (as for `backup`), with the given flag values on top. CONFIG_INVALID when
 * `provider-options` is not a mapping.
 */
export function providerSettingsFrom(
  argv: GlobalArgs,
  flags: Record<string, unknown> = {},
): Record<string, unknown> {
  const fromFile = argv.config ? readConfigFile(argv.config).providerOptions : undefined;
  if (
    fromFile !== undefined &&
    (fromFile === null || typeof fromFile !== 'object' || Array.isArray(fromFile))
  ) {
    throw new DssnapError(
      'CONFIG_INVALID',
      `'provider-options' in ${argv.config} must be a mapping of settings`,
    );
  }
  const defined = Object.entries(flags).filter(([, value]) => value !== undefined);
  return { ...(fromFile as Record<string, unknown> | undefined), ...Object.fromEntries(defined) };
}

export function backupOptionsFrom(argv: Record<string, unknown> & GlobalArgs): BackupOptions {
  const keys = Object.keys(backupOptionsSchema.shape);
  return withCloudDiskOptions(
    resolveOptions(backupOptionsSchema, {
      ...(argv.config ? { file: readConfigFile(argv.config), filePath: argv.config } : {}),
      env: optionsFromEnv(backupOptionsSchema),
      flags: backupFlags(argv, keys),
    }),
  );
}

/**
 * `--disk`, `--snapshot-location` (gcp) and `--full-snapshot` (azure) are provider settings (`disks`,
 * `snapshotLocation`, `fullSnapshot`) given as options.
 */
function withCloudDiskOptions(options: BackupOptions): BackupOptions {
  if (!options.disk?.length && !options.snapshotLocation && options.fullSnapshot === undefined)
    return options;
  return {
    ...options,
    providerOptions: {
      ...options.providerOptions,
      ...(options.disk?.length ? { disks: options.disk } : {}),
      ...(options.snapshotLocation ? { snapshotLocation: options.snapshotLocation } : {}),
      ...(options.fullSnapshot === undefined ? {} : { fullSnapshot: options.fullSnapshot }),
    },
  };
}
