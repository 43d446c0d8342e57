/** `dssnap list`: the catalog of a destination (and the state dir), plus retained snapshots. */
import { join, resolve } from 'node:path';
import { catalogDir, type Manifest, readManifests } from '../../catalog/manifest.js';
import { parseDestination } from '../../copy/destination.js';
import { formatBytes, formatDuration } from '../../duration.js';
import { DssnapError } from '../../errors.js';
import { loadProvider } from '../../provider/registry.js';
import type { Snapshot } from '../../provider/types.js';
import type { ListArgs } from '../commands/list.js';
import { loggerFor, providerSettingsFrom } from '../context.js';
import { printJson, reportFailure } from '../output.js';

export async function handleList(argv: ListArgs): Promise<number> {
  const log = loggerFor(argv);
  try {
    if (!argv.to && !argv.provider) {
      throw new DssnapError('USAGE', 'Nothing to list: give --to (a backup destination) and/or --provider', {
        hint: "e.g. 'dssnap list --to /backups/dss'",
      });
    }
    const stateDir = argv.stateDir ?? '/var/lib/dssnap';
    const destination = argv.to ? parseDestination(argv.to) : undefined;
    // Remote destinations are catalogued in the state dir only.
    const dirs = [
      ...(destination?.kind === 'local' ? [catalogDir(resolve(destination.path))] : []),
      join(stateDir, 'catalog'),
    ];
    const seen = new Set<string>();
    let backups: Manifest[] = [];
    for (const dir of dirs) {
      for (const m of await readManifests(dir)) {
        if (!seen.has(m.id)) backups.push(m);
        seen.add(m.id);
      }
    }
    const dataDir = argv.dataDir ? resolve(argv.dataDir) : undefined;
    if (dataDir) backups = backups.filter((m) => m.dataDir === dataDir);
    if (destination?.kind === 'remote')
      backups = backups.filter((m) => m.copy?.location.startsWith(`${argv.to}/`));
    backups.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
    let snapshots: Snapshot[] = [];
    if (argv.provider) {
      const provider = await loadProvider(argv.provider, {
        stateDir,
        settings: providerSettingsFrom(argv, { snapshotDir: argv.snapshotDir }),
      });
      snapshots = await provider.list({ retained: true, ...(dataDir ? { dataDir } : {}) });
    }
    if (argv.json) {
      printJson({ ok: true, backups, snapshots });
      return 0;
    }
    process.stdout.write(formatTable(backups));
    if (argv.provider) {
      process.stdout.write(`\nRetained ${argv.provider} snapshots: ${snapshots.length}\n`);
      for (const s of snapshots)
        process.stdout.write(`  ${s.createdAt}  ${s.id}  (${s.tags['dssnap:data-dir'] ?? ''})\n`);
    }
    return 0;
  } catch (error) {
    return reportFailure(error, argv, log);
  }
}

export function formatTable(backups: readonly Manifest[]): string {
  if (backups.length === 0) return 'No backups.\n';
  const header = ['ID', 'STARTED', 'MODE', 'FORMAT', 'SIZE', 'WRITTEN', 'FILES', 'PAUSE', 'STATUS'];
  const rows = backups.map((m) => [
    m.id,
    m.startedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    m.provider ? `${m.mode}/${m.provider}` : m.mode,
    m.copy ? m.copy.format : m.snapshots.some((s) => s.retained) ? 'snapshot' : '-',
    formatBytes(m.stats.totalBytes),
    formatBytes(m.stats.transferredBytes),
    String(m.stats.files),
    formatDuration(m.pauseMs),
    m.phase === 'completed' ? 'ok' : 'warnings',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}
