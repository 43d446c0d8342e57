/** ARM resource ids: `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Compute/{type}/{name}`. */
import { DssnapError } from '../../src/errors.js';

export type ComputeType = 'disks' | 'snapshots' | 'virtualMachines';

export interface ResourceId {
  subscription: string;
  resourceGroup: string;
  type: ComputeType;
  name: string;
}

const pattern =
  /^\/?subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/(disks|snapshots|virtualMachines)\/([^/]+)$/i;

/** Parse a Compute resource id (case-insensitive, as ARM). Throws PROVIDER_ERROR for anything else. */
export function parseResourceId(id: string, expected?: ComputeType): ResourceId {
  const match = pattern.exec(id.trim());
  const type = match ? canonicalType(match[3]!) : undefined;
  if (!match || !type || (expected && type !== expected)) {
    throw new DssnapError(
      'PROVIDER_ERROR',
      `'${id}' is not the resource id of ${expected ? `an Azure ${expected.replace(/s$/, '')}` : 'an Azure Compute resource'}`,
      {
        hint: 'Resource ids look like /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Compute/disks/<name>.',
        details: { id, expected },
      },
    );
  }
  return { subscription: match[1]!, resourceGroup: match[2]!, type, name: match[4]! };
}

/** The canonical id of a resource. */
export function formatResourceId(id: ResourceId): string {
  return `/subscriptions/${id.subscription}/resourceGroups/${id.resourceGroup}/providers/Microsoft.Compute/${id.type}/${id.name}`;
}

/** True when two ids name the same resource (ARM ids compare case-insensitively). */
export function sameResource(a: string | undefined, b: string | undefined): boolean {
  return (
    a !== undefined &&
    b !== undefined &&
    a.replace(/^\/?/, '/').toLowerCase() === b.replace(/^\/?/, '/').toLowerCase()
  );
}

/**
 * A valid ARM name (1–80 characters; letters, digits, `_`, `.`, `-`; starts with a letter or digit,
 * ends with a letter, digit or `_`) built from `parts`, shortened from the middle part if needed.
 */
export function resourceName(prefix: string, middle: string, suffix: string): string {
  const clean = (text: string) => text.replace(/[^A-Za-z0-9_.-]/g, '-');
  const room = 80 - prefix.length - suffix.length - 2;
  const body = clean(middle)
    .slice(0, Math.max(room, 0))
    .replace(/^[^A-Za-z0-9]+/, '')
    .replace(/[^A-Za-z0-9_]+$/, '');
  return [clean(prefix), body, clean(suffix)]
    .filter(Boolean)
    .join('-')
    .replace(/[^A-Za-z0-9_]+$/, '');
}

function canonicalType(type: string): ComputeType | undefined {
  const lower = type.toLowerCase();
  if (lower === 'disks') return 'disks';
  if (lower === 'snapshots') return 'snapshots';
  if (lower === 'virtualmachines') return 'virtualMachines';
  return undefined;
}
