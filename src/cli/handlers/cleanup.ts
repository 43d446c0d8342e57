/**
 * `dssnap cleanup`: delete what dssnap created and no live run owns, found by tag — the safety net for
 * runs whose journal was lost. Retained snapshots are never touched.
 */
import { resolve } from 'node:path';
import { ExitCode, errorMessage } from '../../errors.js';
import { isLockHeld, listLocks } from '../../procedure/lock.js';
import { loadProvider } from '../../provider/registry.js';
import { withRetries } from '../../provider/retry.js';
import { TagKey } from '../../provider/types.js';
import type { CleanupArgs } from '../commands/cleanup.js';
import { loggerFor, providerSettingsFrom } from '../context.js';
import { printJson, reportFailure } from '../output.js';

export async function handleCleanup(argv: CleanupArgs): Promise<number> {
  const log = loggerFor(argv);
  try {
    const provider = withRetries(
      await loadProvider(argv.provider, {
        stateDir: argv.stateDir,
        settings: providerSettingsFrom(argv, { snapshotDir: argv.snapshotDir }),
      }),
      { log },
    );
    const liveRuns = new Set(
      listLocks(argv.stateDir)
        .filter(({ info }) => isLockHeld(info))
        .map(({ info }) => info.runId),
    );
    const orphans = (await provider.orphans(argv.dataDir ? { dataDir: resolve(argv.dataDir) } : {})).filter(
      (r) => !liveRuns.has(r.tags[TagKey.runId] ?? ''),
    );
    const results: { id: string; kind: string; runId: string; deleted: boolean; error?: string }[] = [];
    for (const resource of orphans) {
      const runId = resource.tags[TagKey.runId] ?? '';
      if (argv.dryRun) {
        results.push({ id: resource.id, kind: resource.kind, runId, deleted: false });
        continue;
      }
      try {
        if (resource.kind === 'exposure') {
          await provider.ensureReleased({
            snapshotId: '',
            resources: [resource.id],
            ...(resource.attributes ? { attributes: resource.attributes } : {}),
          });
        } else {
          await provider.ensureDeleted({
            id: resource.id,
            provider: provider.id,
            volumeId: resource.attributes?.volumeId ?? '',
            createdAt: resource.tags[TagKey.createdAt] ?? '',
            tags: resource.tags,
            ...(resource.attributes ? { attributes: resource.attributes } : {}),
          });
        }
        results.push({ id: resource.id, kind: resource.kind, runId, deleted: true });
      } catch (error) {
        results.push({
          id: resource.id,
          kind: resource.kind,
          runId,
          deleted: false,
          error: errorMessage(error),
        });
      }
    }
    const failed = results.filter((r) => r.error);
    if (argv.json) printJson({ ok: failed.length === 0, dryRun: Boolean(argv.dryRun), resources: results });
    else {
      if (results.length === 0) process.stdout.write('Nothing to clean up.\n');
      for (const r of results) {
        const verb = argv.dryRun ? 'would delete' : r.deleted ? 'deleted' : `FAILED (${r.error})`;
        process.stdout.write(`${verb}: ${r.kind} ${r.id} (run ${r.runId})\n`);
      }
    }
    return failed.length === 0 ? ExitCode.ok : ExitCode.failed;
  } catch (error) {
    return reportFailure(error, argv, log);
  }
}
