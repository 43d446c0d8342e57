/**
 * Strict parsing of a provider's `settings`: unknown keys are an error listing the valid ones, and
 * every message names the setting, the value and what was expected (STYLE.md habit 8).
 */
import type { z } from 'zod';
import { DssnapError } from '../errors.js';

/** Parse `settings` with a strict zod object schema; returns the typed settings or throws CONFIG_INVALID. */
export function parseProviderSettings<S extends z.ZodObject>(
  providerId: string,
  schema: S,
  settings: Readonly<Record<string, unknown>> | undefined,
): z.infer<S> {
  const result = schema.safeParse(settings ?? {});
  if (result.success) return result.data;
  const valid = Object.keys(schema.shape).join(', ') || '(none)';
  const problems = result.error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map((key) => `'${key}'`).join(', ');
      if (issue.path.length === 0) return `unknown setting(s) ${keys} (valid: ${valid})`;
      const known = keysAt(schema, issue.path);
      return `unknown key(s) ${keys} in setting '${issue.path.join('.')}'${known ? ` (valid: ${known.join(', ')})` : ''}`;
    }
    const path = issue.path.join('.');
    const value = valueAt(settings, issue.path);
    return `setting '${path}' = ${JSON.stringify(value)}: ${issue.message}`;
  });
  throw new DssnapError(
    'CONFIG_INVALID',
    `Invalid settings for provider '${providerId}': ${problems.join('; ')}`,
    {
      hint: `Fix the provider settings in the config file; valid settings for '${providerId}': ${valid}.`,
      details: { provider: providerId, problems },
    },
  );
}

/** The keys a nested object or enum-keyed record accepts, found by walking the schema; undefined if unknown. */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] | undefined {
  type Walkable = {
    shape?: Record<string, unknown>;
    keyType?: { options?: unknown[] };
    unwrap?: () => unknown;
  };
  const unwrap = (node: unknown): Walkable => {
    let current = node as Walkable;
    while (current && typeof current.unwrap === 'function' && !current.shape && !current.keyType) {
      current = current.unwrap() as Walkable;
    }
    return current;
  };
  let node = unwrap(schema);
  for (const key of path) {
    if (node.shape) node = unwrap(node.shape[String(key)]);
    else if (node.keyType) node = unwrap((node as { valueType?: unknown }).valueType);
    else return undefined;
    if (!node) return undefined;
  }
  if (node.shape) return Object.keys(node.shape);
  const options = node.keyType?.options;
  return Array.isArray(options) ? options.map(String) : undefined;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current: unknown = root;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}
