/**
 * The backup options as flags, shared by `backup` and `plan`. Flags carry no defaults here: defaults
 * live in the config schema, so a flag the user did not give never hides a config-file value.
 */
import type { Argv } from 'yargs';
import {
  withDssTimeoutOptions,
  withGovernDbOptions,
  withJobsCheckOptions,
  withRetentionOptions,
} from './shared-options.js';

export function withBackupOptions<T>(yargs: Argv<T>) {
  const own = yargs
    .option('data-dir', { type: 'string', describe: 'The DSS data directory (DATA_DIR)' })
    .option('to', { type: 'string', describe: 'Destination directory, or host:/path over ssh' })
    .option('mode', {
      choices: ['snapshot', 'cold'] as const,
      describe:
        'snapshot (default: quiesce, atomic snapshot, copy from it) or cold (stop DSS, copy, start DSS)',
    })
    .option('provider', {
      type: 'string',
      describe: 'Snapshot provider (default: detected from the filesystem)',
    })
    .option('quiesce', {
      choices: ['none', 'fsfreeze', 'stop'] as const,
      describe: "How writers are held for the snapshot instant (default: the provider's)",
    })
    .option('format', {
      choices: ['rsync', 'tar'] as const,
      describe: 'rsync generation hard-linked to the previous one (default), or one compressed archive',
    })
    .option('compression', {
      choices: ['zstd', 'gzip'] as const,
      describe: 'Archive compression with --format tar (default zstd)',
    })
    .option('compression-level', { type: 'number', describe: 'Compression level (zstd 1-19, gzip 1-9)' })
    .option('copy', {
      choices: ['full', 'none'] as const,
      describe: 'none: snapshot only (with --keep-snapshot), the pre-upgrade rollback point',
    })
    .option('keep-snapshot', {
      type: 'boolean',
      describe: 'Retain the snapshot after the run (tagged, subject to retention)',
    })
    .option('exclude-class', {
      type: 'string',
      array: true,
      describe: 'Exclude a class of DSS folders: temp (default), logs, other, data',
    })
    .option('include-class', {
      type: 'string',
      array: true,
      describe: 'Keep a class excluded by default (e.g. temp)',
    })
    .option('exclude', {
      type: 'string',
      array: true,
      describe: "Extra rsync-style pattern anchored at DATA_DIR ('/local/scratch/')",
    })
    .option('force', { type: 'boolean', describe: 'Skip the running-jobs check and the free-space estimate' })
    .option('max-pause', {
      type: 'string',
      describe: 'Watchdog: thaw and fail if the snapshot call takes longer (default 5s)',
    })
    .option('snapshot-timeout', {
      type: 'string',
      describe: 'How long to wait for snapshots to become usable (default 6h)',
    })
    .option('state-dir', {
      type: 'string',
      describe: "dssnap's journals and locks (default /var/lib/dssnap); never on the frozen filesystem",
    })
    .option('mount-root', { type: 'string', describe: 'Where snapshots are mounted (default /run/dssnap)' })
    .option('snapshot-dir', {
      type: 'string',
      describe: 'btrfs: where snapshots are created (default <fs root>/.dssnap-snapshots)',
    })
    .option('snapshot-size', {
      type: 'string',
      describe: "lvm: room for a classic snapshot's changes, '20%' of the origin (default) or a size ('2G')",
    })
    .option('volume', {
      type: 'string',
      array: true,
      describe:
        "aws: the EBS volume holding DATA_DIR, overriding detection ('vol-…', or 'vol-…=/mount/point' for a volume mounted below it)",
    })
    .option('disk', {
      type: 'string',
      array: true,
      describe:
        "gcp/azure: the disk holding DATA_DIR, overriding detection (gcp 'name', azure '<disk resource id>'; '…=/mount/point' for a disk mounted below it)",
    })
    .option('snapshot-location', {
      type: 'string',
      describe: "gcp: where snapshots are stored ('eu', 'us-central1'…; default: Google's nearest)",
    })
    .option('full-snapshot', {
      type: 'boolean',
      describe: 'azure: full snapshots instead of incremental ones (default: incremental)',
    })
    .option('ssh-command', {
      type: 'string',
      describe: "ssh command for a remote --to (default 'ssh -o BatchMode=yes')",
    })
    .option('prune', {
      type: 'boolean',
      describe: 'After a successful run, apply the keep-* policy (dssnap prune)',
    });
  return withRetentionOptions(
    withGovernDbOptions(withDssTimeoutOptions(withJobsCheckOptions(own)), 'config/dip.properties'),
  );
}

/** The backup option names as flags give them (camelCase), with comma lists split. */
export function backupFlags(argv: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const flags: Record<string, unknown> = {};
  for (const key of keys) {
    let value = argv[key];
    if (value === undefined) continue;
    if (Array.isArray(value)) value = value.flatMap((v) => String(v).split(',')).filter(Boolean);
    flags[key] = value;
  }
  return flags;
}
