import { lstat, readdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFixtureRoot, generateDataDir } from '../../test/fixtures/generate-data-dir.js';
import { measureExclusions, resolveExclusions } from './exclusions.js';

describe('resolveExclusions', () => {
  it.each([
    [{}, ['temp'], ['/tmp/', '/caches/', '/data-catalog/']],
    [
      { excludeClasses: ['logs'] },
      ['temp', 'logs'],
      ['/tmp/', '/caches/', '/data-catalog/', '/run/', '/jobs/', '/scenarios/', '/diagnosis/'],
    ],
    [{ includeClasses: ['temp'] }, [], []],
    [
      { includeClasses: ['temp'], excludeClasses: ['other'] },
      ['other'],
      ['/exports/', '/prepared_bundles/', '/apinode-packages/'],
    ],
    [
      { includeClasses: ['temp'], excludeClasses: ['data'] },
      ['data'],
      ['/managed_datasets/', '/analysis_data/', '/analysis-data/', '/saved_models/'],
    ],
    [{ excludeClasses: ['data', 'temp', 'logs', 'logs'] }, ['temp', 'logs', 'data'], expect.any(Array)],
    [{ includeClasses: ['logs'] }, ['temp'], ['/tmp/', '/caches/', '/data-catalog/']],
    [
      { includeClasses: ['temp'], patterns: ['/local/scratch/', '*.tmp', '/local/scratch/'] },
      [],
      ['/local/scratch/', '*.tmp'],
    ],
    [{ patterns: ['/tmp/'] }, ['temp'], ['/tmp/', '/caches/', '/data-catalog/']],
  ])('resolves %j to classes %j', (options, classes, patterns) => {
    const resolved = resolveExclusions(options);

    expect(resolved.classes).toEqual(classes);
    expect(resolved.patterns).toEqual(patterns);
  });

  it.each([
    [
      { excludeClasses: ['cache'] },
      "Unknown exclusion class 'cache' in the exclude list: must be one of: temp, logs, other, data",
    ],
    [
      { includeClasses: ['Temp'] },
      "Unknown exclusion class 'Temp' in the include list: must be one of: temp, logs, other, data",
    ],
    [
      { excludeClasses: ['logs'], includeClasses: ['logs'] },
      "The exclusion class 'logs' is both excluded and included",
    ],
    [{ patterns: [''] }, 'Invalid exclude pattern "": it is empty or spans lines'],
    [{ patterns: ['/a/\n/b/'] }, 'Invalid exclude pattern "/a/\\n/b/": it is empty or spans lines'],
  ])('refuses %j with a USAGE error', (options, message) => {
    const resolve = (): unknown => resolveExclusions(options);

    expect(resolve).toThrow(message);
    expect(resolve).toThrow(expect.objectContaining({ code: 'USAGE', exitCode: 3 }));
  });
});

describe('measureExclusions', () => {
  let root: string;
  let dataDir: string;

  beforeAll(async () => {
    root = await createFixtureRoot('dssnap-exclusions-');
    ({ dataDir } = await generateDataDir({ dir: join(root, 'dss'), seed: 3 }));
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('reports the size of every excluded folder, and zero for folders DSS has not created', async () => {
    const resolved = resolveExclusions({ excludeClasses: ['data'] });

    const measures = await measureExclusions(dataDir, resolved);

    expect(measures.map((m) => `${m.class}:${m.folder}`)).toEqual([
      'temp:tmp',
      'temp:caches',
      'temp:data-catalog',
      'data:managed_datasets',
      'data:analysis_data',
      'data:analysis-data',
      'data:saved_models',
    ]);
    for (const measure of measures) {
      const expected = await du(join(dataDir, measure.folder));
      expect(measure, measure.folder).toMatchObject({ bytes: expected.bytes, files: expected.files });
    }
    expect(measures.find((m) => m.folder === 'analysis_data')).toMatchObject({
      exists: false,
      bytes: 0,
      files: 0,
    });
    expect(measures.find((m) => m.folder === 'managed_datasets')!.bytes).toBeGreaterThan(500_000);
  });

  it('does not follow a symlinked folder out of DATA_DIR', async () => {
    await rm(join(dataDir, 'exports'), { recursive: true });
    await symlink(join(dataDir, 'managed_datasets'), join(dataDir, 'exports'));

    const measures = await measureExclusions(dataDir, resolveExclusions({ excludeClasses: ['other'] }));

    expect(measures.find((m) => m.folder === 'exports')).toMatchObject({ exists: true, files: 1 });
    expect(measures.find((m) => m.folder === 'exports')!.bytes).toBeLessThan(1000);
  });
});

/** An independent count: every non-directory entry, sizes by lstat (the tree has no hard links there). */
async function du(path: string): Promise<{ bytes: number; files: number }> {
  const total = { bytes: 0, files: 0 };
  const top = await lstat(path).catch(() => undefined);
  if (!top) return total;
  const entries = await readdir(path, { withFileTypes: true, recursive: true });
  for (const entry of entries) {
    if (entry.isDirectory()) continue;
    total.files++;
    total.bytes += (await lstat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}
