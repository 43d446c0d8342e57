import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Manifest, readManifests, writeManifest } from './manifest.js';

function manifest(id: string, startedAt: string): Manifest {
  return {
    schemaVersion: 1,
    id,
    runId: id,
    startedAt,
    finishedAt: startedAt,
    phase: 'completed',
    mode: 'snapshot',
    provider: 'btrfs',
    quiesce: 'none',
    dataDir: '/data/dss',
    host: 'h',
    dss: { productVersion: '13.4.2', confVersion: 13040, nodeType: 'design' },
    copy: { format: 'rsync', location: `/backups/${id}` },
    snapshots: [],
    exclusions: { classes: ['temp'], patterns: ['/tmp/'] },
    stats: { files: 1, totalBytes: 2, transferredBytes: 2 },
    pauseMs: 3.2,
    durationMs: 10,
    steps: [],
    warnings: [],
  };
}

describe('catalog', () => {
  it('round-trips manifests, oldest first, and leaves no temp file', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'dssnap-catalog-')), 'catalog');

    await writeManifest(dir, manifest('b', '2026-01-02T00:00:00.000Z'));
    await writeManifest(dir, manifest('a', '2026-01-01T00:00:00.000Z'));

    expect((await readManifests(dir)).map((m) => m.id)).toEqual(['a', 'b']);
    expect((await readdir(dir)).sort()).toEqual(['a.json', 'b.json']);
  });

  it('treats a missing catalog as empty and ignores a half-written temp file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dssnap-catalog-'));
    await writeFile(join(dir, '.c.json.tmp'), '{ "id": ');

    expect(await readManifests(join(dir, 'missing'))).toEqual([]);
    expect(await readManifests(dir)).toEqual([]);
  });
});
