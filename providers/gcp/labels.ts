/**
 * dssnap's tags on Compute Engine resources. GCP labels are strict — keys and values of lower-case
 * letters, digits, `_` and `-`, at most 63 characters, keys starting with a letter — so a tag like
 * `dssnap:data-dir=/data/DSS` becomes the label `dssnap-data-dir=_data_dss`: good for filtering on the
 * server, not for reading back. The exact tags (and the facts needed to read a snapshot later) are also
 * kept as JSON in the resource's description, which is fixed at creation; labels changed later
 * (`dssnap-retain` when a snapshot is retained) win over it.
 */
import { createHash } from 'node:crypto';
import type { Tags } from '../../src/provider/types.js';

export const maxLabelLength = 63;
const invalidInKey = /[^a-z0-9_-]/g;
const invalidInValue = /[^a-z0-9_-]/g;

/** Marks dssnap's description JSON. */
const descriptionVersion = 1;

/** `dssnap:run-id` → `dssnap-run-id`: lower case, other characters `-`, a letter first, ≤ 63. */
export function labelKey(tagKey: string): string {
  let key = tagKey.toLowerCase().replace(invalidInKey, '-');
  if (!/^[a-z]/.test(key)) key = `k-${key}`;
  return bounded(key, tagKey);
}

/** A tag value as a label value: lower case, other characters `_`, ≤ 63 (longer: cut, plus a hash). */
export function labelValue(value: string): string {
  return bounded(value.toLowerCase().replace(invalidInValue, '_'), value);
}

/** The tag key a dssnap label stands for: `dssnap-run-id` → `dssnap:run-id`; others unchanged. */
export function tagKeyOf(label: string): string {
  return label.replace(/^dssnap-/, 'dssnap:');
}

/** Every tag as a label (keys and values sanitised). */
export function toLabels(tags: Tags): Record<string, string> {
  return Object.fromEntries(Object.entries(tags).map(([key, value]) => [labelKey(key), labelValue(value)]));
}

/** The description holding the exact tags and the facts a later read of the resource needs. */
export function describeResource(tags: Tags, attributes: Readonly<Record<string, string>> = {}): string {
  return JSON.stringify({ dssnap: descriptionVersion, tags, attributes });
}

export interface DescribedResource {
  tags: Record<string, string>;
  attributes: Record<string, string>;
}

/**
 * The tags of a resource: those recorded in its description, then every `dssnap-*` label whose value
 * differs from the recorded tag's label (set or changed since creation). A description that is not
 * dssnap's yields the labels alone.
 */
export function readResource(
  description: string | null | undefined,
  labels: Readonly<Record<string, string>> | null | undefined,
): DescribedResource {
  const recorded = parseDescription(description);
  const tags: Record<string, string> = { ...recorded.tags };
  for (const [label, value] of Object.entries(labels ?? {})) {
    if (!label.startsWith('dssnap-')) continue;
    const key = tagKeyOf(label);
    if (tags[key] === undefined || labelValue(tags[key]) !== value) tags[key] = value;
  }
  return { tags, attributes: recorded.attributes };
}

/** A Compute `filter` matching every label of `tags` exactly (`(labels.k = "v") (labels.k2 = "v2")`). */
export function labelFilter(tags: Tags): string {
  return Object.entries(toLabels(tags))
    .map(([key, value]) => `(labels.${key} = "${value}")`)
    .join(' ');
}

/**
 * A Compute Engine resource name (RFC 1035, ≤ 63) made of readable `parts` and a hash of `unique`:
 * `dssnap-20250131t120000z-dss-data-1a2b3c4d`. The same inputs give the same name, so a retried
 * create finds what the first try made.
 */
export function resourceName(parts: readonly string[], unique: string): string {
  const hash = createHash('sha256').update(unique).digest('hex').slice(0, 8);
  const readable = ['dssnap', ...parts]
    .join('-')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-');
  return `${readable.slice(0, maxLabelLength - hash.length - 1).replace(/-+$/, '')}-${hash}`;
}

function bounded(text: string, original: string): string {
  if (text.length <= maxLabelLength) return text;
  const hash = createHash('sha256').update(original).digest('hex').slice(0, 8);
  return `${text.slice(0, maxLabelLength - hash.length - 1)}-${hash}`;
}

function parseDescription(description: string | null | undefined): DescribedResource {
  try {
    const parsed = JSON.parse(description ?? '') as {
      dssnap?: unknown;
      tags?: unknown;
      attributes?: unknown;
    };
    if (parsed.dssnap !== descriptionVersion) return { tags: {}, attributes: {} };
    return { tags: strings(parsed.tags), attributes: strings(parsed.attributes) };
  } catch {
    return { tags: {}, attributes: {} };
  }
}

function strings(value: unknown): Record<string, string> {
  if (value === null || typeof value !== 'object') return {};
  return Object.fromEntries(
    Object.entries(value).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
}
