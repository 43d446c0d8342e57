/** Every command, one file each. Their handlers import the implementation lazily. */
import type { CommandModule } from 'yargs';
import { backupCommand } from './backup.js';
import { cleanupCommand } from './cleanup.js';
import { demoCommand } from './demo.js';
import { doctorCommand } from './doctor.js';
import { listCommand } from './list.js';
import { planCommand } from './plan.js';
import { pruneCommand } from './prune.js';
import { recoverCommand } from './recover.js';
import { restoreCommand } from './restore.js';
import { scheduleCommand } from './schedule.js';
import { verifyCommand } from './verify.js';

// biome-ignore lint/suspicious/noExplicitAny: yargs command modules differ in their argument types.
export const commands: CommandModule<any, any>[] = [
  backupCommand,
  planCommand,
  listCommand,
  recoverCommand,
  restoreCommand,
  verifyCommand,
  pruneCommand,
  scheduleCommand,
  cleanupCommand,
  doctorCommand,
  demoCommand,
];
