/**
 * Options come from a config file (YAML or JSON), environment variables (DSSNAP_<NAME>) and flags, in
 * rising precedence, and are validated strictly: an unknown key is an error listing the valid ones; a bad
 * value names the option, the value and the expected type.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { DssnapError } from './errors.js';

/** A duration option or setting (`500ms`, `30s`, `5m`, or seconds): also used by provider settings. */
export const duration = z.union([z.string(), z.number()]).superRefine((value, ctx) => {
  try {
    parseDuration(value, 'option');
  } catch {
    ctx.addIssue({
      code: 'custom',
      message: 'not a duration: write a number with a unit, e.g. 500ms, 30s, 5m, 2h',
    });
  }
});
/** A retention count: whole periods to keep, -1 for all (flags, env vars and files alike). */
const keepCount = z.coerce.number().int().min(-1).optional();
const stringList = z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : [v]));

/** Every option a backup run takes. Names are camelCase here, kebab-case on the command line and in files. */
export const backupOptionsSchema = z.strictObject({
  dataDir: z.string().min(1),
  to: z.string().min(1).optional(),
  mode: z.enum(['snapshot', 'cold']).optional(),
  provider: z.string().min(1).optional(),
  quiesce: z.enum(['none', 'fsfreeze', 'stop']).optional(),
  format: z.enum(['rsync', 'tar']).default('rsync'),
  compression: z.enum(['zstd', 'gzip']).default('zstd'),
  compressionLevel: z.number().int().min(1).max(19).optional(),
  copy: z.enum(['full', 'none']).default('full'),
  keepSnapshot: z.boolean().default(false),
  excludeClass: stringList.default([]),
  includeClass: stringList.default([]),
  exclude: stringList.default([]),
  dssUrl: z.string().url().optional(),
  dssApiKeyFile: z.string().optional(),
  waitForJobs: duration.optional(),
  force: z.boolean().default(false),
  maxPause: duration.default('5s'),
  stopTimeout: duration.default('3m'),
  startTimeout: duration.default('5m'),
  snapshotTimeout: duration.default('6h'),
  stateDir: z.string().default('/var/lib/dssnap'),
  mountRoot: z.string().default('/run/dssnap'),
  snapshotDir: z.string().optional(),
  /** lvm: copy-on-write size of classic snapshots, `20%` of the origin or a size (`2G`). */
  snapshotSize: z.string().optional(),
  /** aws: the EBS volume(s) behind DATA_DIR, overriding detection (`vol-…` or `vol-…=/mount/point`). */
  volume: stringList.optional(),
  /** gcp: the persistent disk(s) behind DATA_DIR, overriding detection (`name` or `name=/mount/point`). */
  disk: stringList.optional(),
  /** gcp: where snapshots are stored (`eu`, `us-central1`…); default: Google's nearest. */
  snapshotLocation: z.string().min(1).optional(),
  /** azure: full snapshots instead of incremental ones (the provider setting `fullSnapshot`). */
  fullSnapshot: z.boolean().optional(),
  /** Provider-specific settings (config file only), validated strictly by the provider. */
  providerOptions: z.record(z.string(), z.unknown()).optional(),
  sshCommand: z.string().optional(),
  /** Govern nodes: the PostgreSQL database (default: config/dip.properties); password never here. */
  governDb: z.string().min(1).optional(),
  governDbPasswordFile: z.string().optional(),
  /** Apply the keep-* policy after a successful run. */
  prune: z.boolean().default(false),
  keepLast: keepCount,
  keepHourly: keepCount,
  keepDaily: keepCount,
  keepWeekly: keepCount,
  keepMonthly: keepCount,
  keepYearly: keepCount,
  /** IANA zone in which retention counts days and weeks (default: this host's). */
  timeZone: z.string().min(1).optional(),
});
export type BackupOptions = z.output<typeof backupOptionsSchema>;

export function kebabCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function camelCase(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function envName(option: string): string {
  return `DSSNAP_${kebabCase(option).replace(/-/g, '_').toUpperCase()}`;
}

/** Read a YAML or JSON config file into an object with camelCase keys. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new DssnapError(
      'CONFIG_INVALID',
      `Cannot read the config file ${path}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  let parsed: unknown;
  try {
    parsed = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new DssnapError(
      'CONFIG_INVALID',
      `The config file ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new DssnapError(
      'CONFIG_INVALID',
      `The config file ${path} must hold a mapping of option names to values`,
    );
  }
  return Object.fromEntries(Object.entries(parsed).map(([key, value]) => [camelCase(key), value]));
}

/** Values of DSSNAP_* environment variables for the options of `schema`, typed like flags would be. */
export function optionsFromEnv(
  schema: z.ZodObject<z.ZodRawShape>,
  env: NodeJS.ProcessEnv = process.env,
): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const key of Object.keys(schema.shape)) {
    const raw = env[envName(key)];
    if (raw === undefined || raw === '') continue;
    if (raw === 'true' || raw === 'false') result[key] = raw === 'true';
    else if (/^\d+$/.test(raw) && key === 'compressionLevel') result[key] = Number(raw);
    else result[key] = raw;
  }
  return result;
}

export interface OptionSources {
  file?: Record<string, unknown>;
  env?: Record<string, unknown>;
  flags?: Record<string, unknown>;
  /** Where file options came from, for error messages. */
  filePath?: string;
}

/** Merge the sources (flags > env > file > defaults) and validate strictly. */
export function resolveOptions<S extends z.ZodObject<z.ZodRawShape>>(
  schema: S,
  sources: OptionSources,
): z.output<S> {
  const valid = Object.keys(schema.shape);
  for (const [origin, values] of [
    [sources.filePath ? `config file ${sources.filePath}` : 'config file', sources.file],
    ['flags', sources.flags],
  ] as const) {
    for (const key of Object.keys(values ?? {})) {
      if (!valid.includes(key)) {
        throw new DssnapError('CONFIG_INVALID', `Unknown option '${kebabCase(key)}' in ${origin}`, {
          hint: `Valid options: ${valid.map(kebabCase).join(', ')}.`,
        });
      }
    }
  }
  const merged = { ...sources.file, ...sources.env, ...definedOnly(sources.flags ?? {}) };
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0] ?? '');
    const value = key ? (merged as Record<string, unknown>)[key] : undefined;
    const shown =
      value === undefined
        ? 'nothing'
        : `${JSON.stringify(value)} (a ${Array.isArray(value) ? 'list' : typeof value})`;
    throw new DssnapError(
      'CONFIG_INVALID',
      `Invalid value for --${kebabCase(key)}: ${shown}: ${issue.message}`,
      {
        hint:
          value === undefined
            ? `Give --${kebabCase(key)}, ${envName(key)} or '${kebabCase(key)}:' in the config file.`
            : undefined,
      },
    );
  }
  return parsed.data;
}

function definedOnly(values: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined));
}
