/**
 * `dssnap doctor --permissions`: each action the provider calls, why, and whether the cloud allows it —
 * read from the provider's doctor checks (aws: one DryRun check per action; gcp: testIamPermissions,
 * one check per permission; azure: one check per resource group listing the missing actions).
 */
import type { Permission, ProviderCheck } from '../provider/types.js';

export type PermissionStatus = 'allowed' | 'denied' | 'unknown';

export interface PermissionRow extends Permission {
  status: PermissionStatus;
  /** What the cloud said, when it said more than allowed/denied (an undecided DryRun…). */
  detail?: string;
}

/** Check names that judge every permission at once (azure: `azure permissions (<group>)`). */
const groupCheck = /^\w+ permissions\b/;

/** The status of each permission, from the doctor checks; `unknown` where the cloud could not tell. */
export function permissionRows(
  permissions: readonly Permission[],
  checks: readonly ProviderCheck[],
): PermissionRow[] {
  const groups = checks.filter((c) => groupCheck.test(c.name));
  return permissions.map((permission) => {
    const own = checks.find((c) => c.name === `iam ${permission.action}`);
    if (own) {
      if (!own.ok) return { ...permission, status: 'denied', detail: own.detail };
      return /^(allowed|granted)\b/.test(own.detail)
        ? { ...permission, status: 'allowed' }
        : { ...permission, status: 'unknown', detail: own.detail };
    }
    if (groups.length === 0) return { ...permission, status: 'unknown', detail: 'not checked' };
    // A group check either passed, or lists what is missing ("missing: A (why); B (why)"), or failed.
    const missing = groups.filter((g) => !g.ok && g.detail.startsWith('missing:'));
    const failed = groups.filter((g) => !g.ok && !g.detail.startsWith('missing:'));
    const denied = missing.filter((g) =>
      g.detail
        .slice('missing:'.length)
        .split(';')
        .some((entry) => entry.trim().split(' ')[0]?.toLowerCase() === permission.action.toLowerCase()),
    );
    if (denied.length > 0)
      return { ...permission, status: 'denied', detail: denied.map((g) => g.name).join(', ') };
    if (failed.length > 0)
      return {
        ...permission,
        status: 'unknown',
        detail: failed.map((g) => `${g.name}: ${g.detail}`).join('; '),
      };
    return { ...permission, status: 'allowed' };
  });
}

/** The table as text: action, status, why; then what the cloud said about the rows it could not decide. */
export function formatPermissionTable(providerId: string, rows: readonly PermissionRow[]): string {
  const width = Math.max('ACTION'.length, ...rows.map((r) => r.action.length));
  const label = (s: PermissionStatus): string => (s === 'denied' ? 'DENIED' : s);
  const lines = [
    `Permissions of the ${providerId} provider (${rows.length}):`,
    '',
    `${'ACTION'.padEnd(width)}  ${'STATUS'.padEnd(7)}  WHY`,
    ...rows.map((r) => `${r.action.padEnd(width)}  ${label(r.status).padEnd(7)}  ${r.reason}`),
  ];
  const notes = rows.filter((r) => r.status !== 'allowed' && r.detail);
  if (notes.length > 0) lines.push('', ...notes.map((r) => `${r.action}: ${r.detail}`));
  return `${lines.join('\n')}\n`;
}
