/**
 * What a restore reads from: the copy of a catalogued backup (an rsync generation or an archive), or a
 * retained snapshot of any provider (named directly, or through a snapshot-only backup's manifest).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type CatalogedBackup, findBackup, listBackups, nearestIds } from '../catalog/find.js';
import type { Manifest } from '../catalog/manifest.js';
import { parseDestination } from '../copy/destination.js';
import { DssnapError } from '../errors.js';
import type { Logger } from '../log.js';
import { loadProvider } from '../provider/registry.js';
import { withRetries } from '../provider/retry.js';
import type { Snapshot, SnapshotProvider } from '../provider/types.js';
import type { BackupCopy } from './materialize.js';
import type { RestoreOptions } from './options.js';

export type RestoreSource =
  | {
      kind: 'copy';
      backup: CatalogedBackup;
      copy: BackupCopy;
      /** The file index of the copy, when the backup recorded one. */
      indexPath?: string;
    }
  | {
      kind: 'snapshot';
      provider: SnapshotProvider;
      providerSettings: Record<string, unknown>;
      snapshot: Snapshot;
      /** The backup whose run retained this snapshot, when the catalog knows it. */
      backup?: CatalogedBackup;
    };

/** The manifest behind a source, when there is one. */
export function sourceManifest(source: RestoreSource): Manifest | undefined {
  return source.backup?.manifest;
}

/** The id a user knows the source by. */
export function sourceName(source: RestoreSource): string {
  return source.kind === 'copy'
    ? source.backup.manifest.id
    : `${source.provider.id} snapshot ${source.snapshot.id}`;
}

/**
 * Resolve what to restore from the options. Changes nothing. Throws USAGE when neither or both of a
 * backup id and `--snapshot` are given, NOT_FOUND (with the nearest ids) for an unknown backup or
 * snapshot, and for a copy that is gone from its destination.
 */
export async function resolveSource(options: RestoreOptions, log: Logger): Promise<RestoreSource> {
  if (!options.backupId === !options.snapshot) {
    throw new DssnapError('USAGE', 'Name one thing to restore: a backup id, or --snapshot with --provider', {
      hint: "e.g. 'dssnap restore 20250101T020000Z-1a2b3c --to /backups/dss --data-dir /data/dss', or 'dssnap restore --snapshot ID --provider btrfs --data-dir /data/dss'.",
    });
  }
  const location = { ...(options.to ? { to: options.to } : {}), stateDir: options.stateDir };
  if (options.backupId) {
    const backup = await findBackup(options.backupId, location);
    const { manifest } = backup;
    if (manifest.copy) {
      checkCopyExists(manifest);
      const indexPath = manifest.files ? join(backup.catalogDir, manifest.files.index) : undefined;
      return {
        kind: 'copy',
        backup,
        copy: manifest.copy,
        ...(indexPath && existsSync(indexPath) ? { indexPath } : {}),
      };
    }
    const retained = manifest.snapshots.find((s) => s.retained);
    if (!retained) {
      throw new DssnapError('NOT_FOUND', `Backup ${manifest.id} has neither a copy nor a retained snapshot`, {
        details: { backupId: manifest.id },
      });
    }
    const { provider, settings } = await providerFor(retained.provider, options, log);
    return {
      kind: 'snapshot',
      provider,
      providerSettings: settings,
      snapshot: await findSnapshot(provider, retained.id),
      backup,
    };
  }
  if (!options.provider) {
    throw new DssnapError('USAGE', '--snapshot needs --provider: which provider holds the snapshot', {
      hint: "e.g. --provider btrfs; 'dssnap list --provider btrfs' lists the retained snapshots.",
    });
  }
  const { provider, settings } = await providerFor(options.provider, options, log);
  const snapshot = await findSnapshot(provider, options.snapshot!);
  const backup = (await listBackups(location).catch(() => [])).find((b) =>
    b.manifest.snapshots.some((s) => s.id === snapshot.id && s.provider === provider.id),
  );
  return { kind: 'snapshot', provider, providerSettings: settings, snapshot, ...(backup ? { backup } : {}) };
}

async function providerFor(
  id: string,
  options: RestoreOptions,
  log: Logger,
): Promise<{ provider: SnapshotProvider; settings: Record<string, unknown> }> {
  const settings = {
    ...options.providerOptions,
    ...(options.snapshotDir ? { snapshotDir: options.snapshotDir } : {}),
  };
  const raw = await loadProvider(id, { stateDir: options.stateDir, settings });
  return { provider: withRetries(raw, { log }), settings };
}

async function findSnapshot(provider: SnapshotProvider, id: string): Promise<Snapshot> {
  const snapshots = await provider.list({});
  const found = snapshots.find((s) => s.id === id);
  if (found) return found;
  const nearest = nearestIds(
    id,
    snapshots.map((s) => s.id),
  );
  throw new DssnapError('NOT_FOUND', `No ${provider.id} snapshot '${id}' made by dssnap`, {
    hint:
      nearest.length > 0
        ? `Nearest snapshot ids: ${nearest.join(', ')}. 'dssnap list --provider ${provider.id}' lists the retained ones.`
        : `The ${provider.id} provider has no dssnap snapshot (check its settings, e.g. --snapshot-dir).`,
    details: { id, nearest },
  });
}

function checkCopyExists(manifest: Manifest): void {
  const location = parseDestination(manifest.copy!.location);
  if (location.kind === 'local' && !existsSync(location.path)) {
    throw new DssnapError(
      'NOT_FOUND',
      `The copy of backup ${manifest.id} is gone: ${location.path} does not exist`,
      {
        hint: 'It may have been removed by hand or by a prune of another catalog; restore another backup.',
        details: { backupId: manifest.id, location: location.path },
      },
    );
  }
}
