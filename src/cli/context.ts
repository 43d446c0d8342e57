/** What every command handler starts with: a logger and its options resolved from file, env and flags. */
import {
  type BackupOptions,
  backupOptionsSchema,
  optionsFromEnv,
  readConfigFile,
  resolveOptions,
} from '../config.js';
import { createLogger, type Logger } from '../log.js';
import { backupFlags } from './backup-options.js';
import type { GlobalArgs } from './output.js';

export function loggerFor(args: GlobalArgs): Logger {
  return createLogger({
    ...(args.logFormat ? { format: args.logFormat } : {}),
    ...(args.logLevel ? { level: args.logLevel } : {}),
  });
}

export function backupOptionsFrom(argv: Record<string, unknown> & GlobalArgs): BackupOptions {
  const keys = Object.keys(backupOptionsSchema.shape);
  return resolveOptions(backupOptionsSchema, {
    ...(argv.config ? { file: readConfigFile(argv.config), filePath: argv.config } : {}),
    env: optionsFromEnv(backupOptionsSchema),
    flags: backupFlags(argv, keys),
  });
}
