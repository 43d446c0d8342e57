/** The options of `dssnap restore`, validated strictly like the backup options (flags > env > file). */
import { z } from 'zod';
import { duration } from '../config.js';

export const restoreOptionsSchema = z.strictObject({
  /** The catalogued backup to restore. */
  backupId: z.string().min(1).optional(),
  /** Or a retained snapshot, with its provider. */
  snapshot: z.string().min(1).optional(),
  provider: z.string().min(1).optional(),
  /** Where DATA_DIR is inside the snapshot's filesystem (found by itself when it can be). */
  pathInSnapshot: z.string().optional(),
  /** The backup destination whose catalog holds the backup. */
  to: z.string().min(1).optional(),
  /** The DATA_DIR to restore into (existing or not). */
  dataDir: z.string().min(1),
  /** A restore elsewhere / onto a newer DSS: the DSS installation whose installer.sh -u migrates it. */
  installDir: z.string().min(1).optional(),
  /** Restore into a non-empty Govern database (its objects are dropped first, in one transaction). */
  clean: z.boolean().default(false),
  governDb: z.string().optional(),
  governDbPasswordFile: z.string().optional(),
  /** Start DSS after the restore (default true). */
  start: z.boolean().default(true),
  /** chown the restored tree to this user (another host where the DSS user has another uid). */
  owner: z.string().min(1).optional(),
  force: z.boolean().default(false),
  dssUrl: z.string().url().optional(),
  dssApiKeyFile: z.string().optional(),
  waitForJobs: duration.optional(),
  stopTimeout: duration.default('3m'),
  startTimeout: duration.default('5m'),
  installerTimeout: duration.default('1h'),
  stateDir: z.string().default('/var/lib/dssnap'),
  mountRoot: z.string().default('/run/dssnap'),
  snapshotDir: z.string().optional(),
  providerOptions: z.record(z.string(), z.unknown()).optional(),
  sshCommand: z.string().optional(),
});
export type RestoreOptions = z.output<typeof restoreOptionsSchema>;
