/**
 * The exclusion classes of the DSS backup documentation as named presets, and their resolution into
 * rsync-style patterns anchored at the DATA_DIR root. By default only `temp` is left out: everything
 * else in DATA_DIR is needed for a faithful restore or costly to rebuild.
 */
import { join } from 'node:path';
import { DssnapError } from '../errors.js';
import { measureTree } from './tree-size.js';

export type ExclusionClass = 'temp' | 'logs' | 'other' | 'data';

/** Top-level DATA_DIR folders of each class, in the order the DSS backup page lists them. */
export const exclusionClassFolders: Readonly<Record<ExclusionClass, readonly string[]>> = {
  temp: ['tmp', 'caches', 'data-catalog'],
  logs: ['run', 'jobs', 'scenarios', 'diagnosis'],
  other: ['exports', 'prepared_bundles', 'apinode-packages'],
  // The backup page spells it analysis_data, the data-dir page analysis-data: match both.
  data: ['managed_datasets', 'analysis_data', 'analysis-data', 'saved_models'],
};

/** One line per class for `--help` and `dssnap plan`. */
export const exclusionClassDescriptions: Readonly<Record<ExclusionClass, string>> = {
  temp: 'temporary files and caches (always safe to leave out)',
  logs: 'logs of the backend, jobs and scenarios, diagnosis bundles',
  other: 'exports, prepared bundles and API node packages',
  data: 'managed datasets, analysis data and saved models (can be rebuilt, with caution)',
};

export const exclusionClasses = Object.keys(exclusionClassFolders) as readonly ExclusionClass[];

/** Left out when the user says nothing. */
export const defaultExcludedClasses: readonly ExclusionClass[] = ['temp'];

export interface ExclusionOptions {
  /** Classes to leave out in addition to the defaults. */
  excludeClasses?: readonly string[];
  /** Classes to keep even though the defaults leave them out (e.g. `temp`). */
  includeClasses?: readonly string[];
  /** Extra rsync-style patterns (`/local/big/`, `*.tmp`), passed through unchanged. */
  patterns?: readonly string[];
}

export interface ResolvedExclusions {
  /** Excluded classes, in the canonical order temp, logs, other, data. */
  classes: ExclusionClass[];
  /** rsync-style patterns: one `/<folder>/` per folder of each class (anchored at DATA_DIR), then the user's. */
  patterns: string[];
}

export interface ExclusionMeasure {
  class: ExclusionClass;
  folder: string;
  /** False when DATA_DIR has no such folder (bytes and files are then 0). */
  exists: boolean;
  bytes: number;
  files: number;
}

/**
 * Turn the user's choices into the classes and patterns to exclude. Pure. Throws USAGE for an unknown
 * class, a class both excluded and included, or an empty/multi-line pattern.
 */
export function resolveExclusions(options: ExclusionOptions = {}): ResolvedExclusions {
  const excluded = new Set<ExclusionClass>(defaultExcludedClasses);
  const asked = (options.excludeClasses ?? []).map((name) => toClass(name, 'exclude'));
  const kept = (options.includeClasses ?? []).map((name) => toClass(name, 'include'));
  const conflict = asked.find((name) => kept.includes(name));
  if (conflict) {
    throw new DssnapError('USAGE', `The exclusion class '${conflict}' is both excluded and included`, {
      hint: 'Name each class either in the exclude list or in the include list, not in both.',
      details: { class: conflict },
    });
  }
  for (const name of asked) excluded.add(name);
  for (const name of kept) excluded.delete(name);

  const classes = exclusionClasses.filter((name) => excluded.has(name));
  const patterns = classes.flatMap((name) => exclusionClassFolders[name].map((folder) => `/${folder}/`));
  for (const pattern of options.patterns ?? []) {
    if (pattern.trim() === '' || /[\r\n]/.test(pattern)) {
      throw new DssnapError(
        'USAGE',
        `Invalid exclude pattern ${JSON.stringify(pattern)}: it is empty or spans lines`,
        {
          hint: "Give one rsync-style pattern per value, e.g. '/local/scratch/' or '*.tmp'.",
          details: { pattern },
        },
      );
    }
    if (!patterns.includes(pattern)) patterns.push(pattern);
  }
  return { classes, patterns };
}

/**
 * How much each excluded folder holds, for `dssnap plan`: one entry per folder of each excluded class,
 * present or not. User patterns are not measured. Reads only; symlinks are not followed.
 */
export async function measureExclusions(
  dataDir: string,
  resolved: Pick<ResolvedExclusions, 'classes'>,
  options: { signal?: AbortSignal } = {},
): Promise<ExclusionMeasure[]> {
  const measures: ExclusionMeasure[] = [];
  for (const name of resolved.classes) {
    for (const folder of exclusionClassFolders[name]) {
      const size = await measureTree(join(dataDir, folder), { signal: options.signal });
      const exists = size.directories > 0 || size.files > 0;
      measures.push({ class: name, folder, exists, bytes: size.bytes, files: size.files });
    }
  }
  return measures;
}

function toClass(name: string, list: 'exclude' | 'include'): ExclusionClass {
  if ((exclusionClasses as readonly string[]).includes(name)) return name as ExclusionClass;
  throw new DssnapError(
    'USAGE',
    `Unknown exclusion class '${name}' in the ${list} list: must be one of: ${exclusionClasses.join(', ')}`,
    { details: { class: name, valid: exclusionClasses } },
  );
}
