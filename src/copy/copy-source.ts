import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DssnapError } from '../errors.js';

/** The absolute path of `source`, or NOT_FOUND when it is not an existing directory. */
export async function assertSourceDirectory(source: string): Promise<string> {
  const absolute = resolve(source);
  const info = await stat(absolute).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new DssnapError('NOT_FOUND', `The copy source ${absolute} does not exist or is not a directory`, {
      hint: 'Check that the snapshot is mounted (or that DATA_DIR exists) before copying.',
      details: { source: absolute },
    });
  }
  return absolute;
}
