/** The raw baseline a user would script by hand: `rsync -a --delete --link-dest=PREV SRC/ NEW/`. */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Manifest } from '../../src/catalog/manifest.js';
import { requireTool } from '../../src/host/exec.js';
import { type MeasuredRun, runMeasured } from './measured-process.js';

/**
 * A raw rsync generation of `source` into `target`, hard-linked against the generation of `previous` (a
 * dssnap manifest) and with the same exclusions (the default temp folders), so both copy the same tree.
 * Throws when rsync fails.
 */
export async function rawGeneration(
  previous: Manifest,
  source: string,
  target: string,
): Promise<MeasuredRun> {
  await mkdir(dirname(target), { recursive: true });
  const args = [
    '-a',
    '--delete',
    `--link-dest=${previous.copy!.location}`,
    ...previous.exclusions.patterns.map((pattern) => `--exclude=${pattern}`),
    `${source}/`,
    `${target}/`,
  ];
  const result = await runMeasured(requireTool('rsync', 'rsync'), args);
  if (result.exitCode !== 0)
    throw new Error(`rsync ${args.join(' ')} exited ${result.exitCode}: ${result.stderr}`);
  return result;
}
