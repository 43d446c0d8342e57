/**
 * `dssnap doctor --provider azure`: this VM as IMDS sees it, a token from the credential chain, the VM
 * readable through ARM, and each declared RBAC action allowed on the resource groups dssnap uses (read
 * from Microsoft.Authorization's effective permissions: ARM has no DryRun). Changes nothing; a failed
 * check is reported, never thrown.
 */
import { errorMessage } from '../../src/errors.js';
import type { Permission, ProviderCheck } from '../../src/provider/types.js';
import type { ArmClient, RolePermissions } from './arm.js';

export interface DoctorContext {
  subscription: string;
  vmResourceGroup: string;
  vmName: string;
  location: string;
  zone: string;
  snapshotResourceGroup: string;
  endpoint: string;
}

/** The checks, in order; each later one is skipped (reported failed) when what it needs failed. */
export async function azureDoctorChecks(
  context: () => Promise<DoctorContext>,
  client: () => Promise<ArmClient>,
  permissions: readonly Permission[],
): Promise<ProviderCheck[]> {
  const checks: ProviderCheck[] = [];
  let ctx: DoctorContext;
  try {
    ctx = await context();
    checks.push({
      name: 'azure vm identity',
      ok: true,
      detail: `VM ${ctx.vmName} in resource group ${ctx.vmResourceGroup}, ${ctx.location}${ctx.zone ? ` zone ${ctx.zone}` : ''}, subscription ${ctx.subscription}; ARM ${ctx.endpoint}`,
    });
  } catch (error) {
    checks.push({ name: 'azure vm identity', ok: false, detail: errorMessage(error) });
    return checks;
  }
  let arm: ArmClient;
  try {
    arm = await client();
    await arm.checkCredential();
    checks.push({
      name: 'azure credential',
      ok: true,
      detail: 'a token for Azure Resource Manager was issued',
    });
  } catch (error) {
    checks.push({ name: 'azure credential', ok: false, detail: errorMessage(error) });
    return checks;
  }
  try {
    const vm = await arm.getVm(ctx.vmResourceGroup, ctx.vmName);
    const luns = (vm.storageProfile?.dataDisks ?? []).map((disk) => disk.lun);
    checks.push({
      name: 'azure vm',
      ok: true,
      detail: `${luns.length} data disk(s) attached (LUN ${luns.join(', ') || 'none'}); a temporary disk takes a free LUN`,
    });
  } catch (error) {
    checks.push({ name: 'azure vm', ok: false, detail: errorMessage(error) });
  }
  const groups = [...new Set([ctx.snapshotResourceGroup, ctx.vmResourceGroup])];
  for (const group of groups) {
    try {
      const granted = await arm.permissionsAt(group);
      const missing = permissions.filter((permission) => !isAllowed(permission.action, granted));
      checks.push({
        name: `azure permissions (${group})`,
        ok: missing.length === 0,
        detail:
          missing.length === 0
            ? `all ${permissions.length} actions allowed`
            : `missing: ${missing.map((permission) => `${permission.action} (${permission.reason})`).join('; ')}`,
      });
    } catch (error) {
      checks.push({ name: `azure permissions (${group})`, ok: false, detail: errorMessage(error) });
    }
  }
  return checks;
}

/**
 * True when `action` is granted: some entry has an action pattern matching it and no notAction of
 * that entry matching it (patterns are case-insensitive with `*` wildcards, as in role definitions).
 */
export function isAllowed(action: string, granted: readonly RolePermissions[]): boolean {
  return granted.some(
    (entry) =>
      entry.actions.some((pattern) => matches(pattern, action)) &&
      !entry.notActions.some((pattern) => matches(pattern, action)),
  );
}

function matches(pattern: string, action: string): boolean {
  const regex = new RegExp(
    `^${pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
    'i',
  );
  return regex.test(action);
}
