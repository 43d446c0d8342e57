/**
 * Tag helpers shared by providers: the tags every snapshot carries, and selector matching, so that
 * `list`, `orphans` and `cleanup` agree on what "this run's" or "this DATA_DIR's" resources are.
 */
import { resolve } from 'node:path';
import {
  type OwnedResource,
  type ResourceRole,
  type Snapshot,
  TagKey,
  type TagSelector,
  type Tags,
} from './types.js';

/** True when the resource is marked retained (`dssnap:retain` = 'true'). */
export function isRetained(tags: Tags): boolean {
  return tags[TagKey.retain] === 'true';
}

/** True when `tags` satisfy every field the selector sets. DATA_DIR paths compare resolved. */
export function matchesSelector(tags: Tags, selector: TagSelector): boolean {
  if (selector.runId !== undefined && tags[TagKey.runId] !== selector.runId) return false;
  if (selector.dataDir !== undefined) {
    const tagged = tags[TagKey.dataDir];
    if (tagged === undefined || resolve(tagged) !== resolve(selector.dataDir)) return false;
  }
  if (selector.retained !== undefined && isRetained(tags) !== selector.retained) return false;
  return true;
}

/**
 * The caller's tags plus the ones a provider owns: the role and, for snapshots, the creation instant.
 * The provider's values win, so a resource never claims a role it does not have.
 */
export function ownedTags(tags: Tags, role: ResourceRole, createdAt?: string): Tags {
  return {
    ...tags,
    [TagKey.role]: role,
    ...(createdAt === undefined ? {} : { [TagKey.createdAt]: createdAt }),
  };
}

/** Newest first by createdAt, then by id so the order is stable. */
export function newestFirst<T extends { createdAt: string; id: string }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) =>
    a.createdAt === b.createdAt ? b.id.localeCompare(a.id) : b.createdAt.localeCompare(a.createdAt),
  );
}

/**
 * The snapshots among `snapshots` that `orphans` reports: those matching `selector` whatever their
 * retention, minus the retained ones (retention, not cleanup, removes those), newest first.
 */
export function orphanSnapshots(snapshots: readonly Snapshot[], selector: TagSelector): OwnedResource[] {
  const anyRetention = { ...selector, retained: undefined };
  return newestFirst(
    snapshots.filter((s) => matchesSelector(s.tags, anyRetention) && !isRetained(s.tags)),
  ).map((s) => ({
    kind: 'snapshot' as const,
    id: s.id,
    tags: s.tags,
    attributes: { ...s.attributes, volumeId: s.volumeId },
  }));
}
