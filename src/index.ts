/**
 * dssnap as a library: the same operations as the CLI, with typed options, results and errors.
 * Cloud SDKs load only when their provider is used.
 */
export {
  type BackupDeps,
  type BackupPlan,
  type BackupResult,
  planBackup,
  runBackup,
} from './backup/backup.js';
export { type RecoverOutcome, recoverAllRuns } from './backup/recover.js';
export { catalogDir, type Manifest, readManifests } from './catalog/manifest.js';
export { type PruneOptions, type PruneResult, pruneBackups } from './catalog/prune.js';
export { applyPolicy, type RetentionPolicy } from './catalog/retention.js';
export { type BackupVerification, verifyBackup } from './catalog/verify.js';
export { type BackupOptions, backupOptionsSchema, readConfigFile, resolveOptions } from './config.js';
export { DssnapError, type ErrorCode, ExitCode, exitCodeFor } from './errors.js';
export { createLogger, type Logger, silentLogger } from './log.js';
export { detectProvider, loadProvider, providerIds } from './provider/registry.js';
export type {
  Exposure,
  Permission,
  ProviderFactory,
  QuiesceMode,
  Snapshot,
  SnapshotProvider,
  TagSelector,
  Volume,
} from './provider/types.js';
export { type RestoreOptions, restoreOptionsSchema } from './restore/options.js';
export { type RestoreResult, runRestore } from './restore/restore.js';
