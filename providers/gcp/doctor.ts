/**
 * `dssnap doctor --provider gcp`: the metadata server answers, Application Default Credentials yield a
 * token, this VM is known to Compute Engine, and each IAM permission the provider needs is granted —
 * asked of Cloud Resource Manager's `projects.testIamPermissions`, which changes nothing.
 */
import { errorMessage } from '../../src/errors.js';
import type { Permission, ProviderCheck } from '../../src/provider/types.js';
import type { ComputeApi } from './client.js';
import type { VmIdentity } from './metadata.js';
import type { ResolvedGcpSettings } from './schema.js';

export interface DoctorContext {
  settings: ResolvedGcpSettings;
  /** Project, zone, instance: settings first, the metadata server for the rest. */
  identity(): Promise<VmIdentity>;
  api(): Promise<ComputeApi>;
  permissions: readonly Permission[];
}

/** Every check, in order. Never throws: a failure is a check with ok false. */
export async function gcpDoctorChecks(context: DoctorContext): Promise<ProviderCheck[]> {
  const checks: ProviderCheck[] = [];
  let me: VmIdentity;
  try {
    me = await context.identity();
    checks.push({
      name: 'gcp metadata',
      ok: true,
      detail: `instance ${me.instance} in ${me.zone}, project ${me.project} (metadata server ${context.settings.metadataUrl})`,
    });
  } catch (error) {
    checks.push({ name: 'gcp metadata', ok: false, detail: errorMessage(error) });
    return checks;
  }
  let api: ComputeApi;
  try {
    api = await context.api();
    const client = await api.auth.getClient();
    const token = await client.getAccessToken();
    if (!token.token) throw new Error('no access token');
    const account = await api.auth
      .getCredentials()
      .then((c) => c.client_email)
      .catch(() => undefined);
    checks.push({
      name: 'gcp credentials',
      ok: true,
      detail: `Application Default Credentials: ${describeClient(client.constructor.name)}${account ? ` ${account}` : ''}`,
    });
  } catch (error) {
    checks.push({
      name: 'gcp credentials',
      ok: false,
      detail: `no usable Application Default Credentials: ${errorMessage(error)}`,
    });
    return checks;
  }
  try {
    const [instance] = await api.call('instances.get', () =>
      api.instances.get({ project: me.project, zone: me.zone, instance: me.instance }, api.callOptions),
    );
    checks.push({
      name: 'gcp instance',
      ok: true,
      detail: `${instance.name} (${instance.status}), ${instance.disks?.length ?? 0} disk(s) attached`,
    });
  } catch (error) {
    checks.push({ name: 'gcp instance', ok: false, detail: errorMessage(error) });
  }
  const wanted = context.permissions.map((p) => p.action);
  let granted: Set<string>;
  try {
    const answer = await api.auth.request<{ permissions?: string[] }>({
      url: `${context.settings.resourceManagerEndpoint}/v1/projects/${encodeURIComponent(me.project)}:testIamPermissions`,
      method: 'POST',
      data: { permissions: wanted },
    });
    granted = new Set(answer.data.permissions ?? []);
  } catch (error) {
    checks.push({
      name: 'iam permissions',
      ok: false,
      detail: `testIamPermissions failed: ${errorMessage(error)}`,
    });
    return checks;
  }
  for (const permission of context.permissions) {
    const ok = granted.has(permission.action);
    checks.push({
      name: `iam ${permission.action}`,
      ok,
      detail: ok ? 'granted' : `MISSING — needed to ${permission.reason}`,
    });
  }
  return checks;
}

function describeClient(name: string): string {
  switch (name) {
    case 'Compute':
      return "the VM's service account (metadata server)";
    case 'JWT':
      return 'service account key (GOOGLE_APPLICATION_CREDENTIALS)';
    case 'UserRefreshClient':
      return 'gcloud user credentials';
    default:
      return name;
  }
}
