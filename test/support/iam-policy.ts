/**
 * Just enough of IAM's evaluation to check terraform-examples/aws's *conditions* against the EC2 calls
 * dssnap really makes: each call is turned into the resources IAM authorizes for it (volume, snapshot,
 * instance) with the condition keys the policy uses (aws:RequestTag/K, aws:ResourceTag/K, aws:TagKeys,
 * ec2:CreateAction); a call is allowed when every one of its resources is allowed by some statement.
 * Resource tags come from a ledger kept from the traffic itself (tags at creation, CreateTags), as EC2
 * would know them. Deliberately small: Allow statements, and the condition operators the example uses.
 */
import { join } from 'node:path';
import type { FaultProxy } from '../fakes/fault-proxy.js';
import { examplesDir, parseExample } from './permission-recorder.js';

export type ResourceType = 'volume' | 'snapshot' | 'instance';

export interface PolicyStatement {
  sid: string;
  actions: string[];
  /** Resource types it covers; '*' for all. */
  resources: Array<ResourceType | '*'>;
  conditions: Array<{ test: string; variable: string; values: string[] }>;
}

/** One resource of a call, as IAM sees it. */
export interface AuthorizedResource {
  type: ResourceType | '*';
  id: string;
  /** Tags it carries before the call (aws:ResourceTag). */
  tags: Record<string, string>;
}

export interface Ec2Call {
  action: string;
  resources: AuthorizedResource[];
  /** Tags in the request (aws:RequestTag, aws:TagKeys). */
  requestTags: Record<string, string>;
  /** For a tag-on-create: the creating action (ec2:CreateAction). */
  createAction?: string;
  dryRun: boolean;
}

/** The statements of `data.aws_iam_policy_document.dssnap`, resources read from the example's locals. */
export async function awsPolicyStatements(): Promise<PolicyStatement[]> {
  const hcl = (await parseExample(join(examplesDir, 'aws'))) as {
    data: { aws_iam_policy_document: { dssnap: Array<{ statement: Array<Record<string, unknown>> }> } };
  };
  return hcl.data.aws_iam_policy_document.dssnap[0]!.statement.map((s) => {
    const expression = JSON.stringify(s.resources);
    const resources: PolicyStatement['resources'] = [];
    if (expression === '["*"]') resources.push('*');
    if (expression.includes('local.volumes')) resources.push('volume');
    if (expression.includes('local.snapshots')) resources.push('snapshot');
    if (expression.includes('local.instances')) resources.push('instance');
    if (resources.length === 0) throw new Error(`aws example: unknown resources ${expression} in ${s.sid}`);
    return {
      sid: String(s.sid),
      actions: s.actions as string[],
      resources,
      conditions: (s.condition as PolicyStatement['conditions'] | undefined) ?? [],
    };
  });
}

/** The resources of `call` no statement allows, as `action on type id`; [] when the call is allowed. */
export function deniedResources(statements: readonly PolicyStatement[], call: Ec2Call): string[] {
  return call.resources
    .filter(
      (resource) =>
        !statements.some(
          (s) =>
            s.actions.includes(call.action) &&
            (s.resources.includes('*') || s.resources.includes(resource.type)) &&
            s.conditions.every((c) => conditionHolds(c, call, resource)),
        ),
    )
    .map(
      (r) => `${call.action}${call.createAction ? ` (with ${call.createAction})` : ''} on ${r.type} ${r.id}`,
    );
}

function conditionHolds(
  condition: PolicyStatement['conditions'][number],
  call: Ec2Call,
  resource: AuthorizedResource,
): boolean {
  const value = contextValue(condition.variable, call, resource);
  switch (condition.test) {
    case 'StringEquals':
      return typeof value === 'string' && condition.values.includes(value);
    case 'Null':
      return condition.values[0] === String(value === undefined);
    case 'ForAllValues:StringLike':
      return (Array.isArray(value) ? value : []).every((v) => condition.values.some((p) => glob(p).test(v)));
    default:
      throw new Error(`iam-policy: condition operator ${condition.test} is not modelled`);
  }
}

function contextValue(
  key: string,
  call: Ec2Call,
  resource: AuthorizedResource,
): string | string[] | undefined {
  if (key.startsWith('aws:RequestTag/')) return call.requestTags[key.slice('aws:RequestTag/'.length)];
  if (key.startsWith('aws:ResourceTag/')) return resource.tags[key.slice('aws:ResourceTag/'.length)];
  if (key === 'aws:TagKeys') return Object.keys(call.requestTags);
  if (key === 'ec2:CreateAction') return call.createAction;
  throw new Error(`iam-policy: condition key ${key} is not modelled`);
}

function glob(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
}

/**
 * Every EC2 call through the proxy from now on, as IAM would authorize it (a tag-on-create also as its
 * implied CreateTags), with the tags each resource had at that moment.
 */
export function recordEc2Calls(proxy: FaultProxy): { calls(): Ec2Call[]; stop(): void } {
  const tags = new Map<string, Record<string, string>>();
  const attachedTo = new Map<string, string>();
  const calls: Ec2Call[] = [];
  const existing = (type: ResourceType, id: string | null): AuthorizedResource[] =>
    id ? [{ type, id, tags: { ...tags.get(id) } }] : [];

  const stop = proxy.onExchange(({ request, status, body }) => {
    const p = new URLSearchParams(request.body);
    const action = p.get('Action');
    if (!action) return;
    const dryRun = p.get('DryRun') === 'true';
    // What this call creates (ids from the answer; none for a DryRun): tagged from the request.
    const fresh: AuthorizedResource[] = [];
    const created = (type: ResourceType): AuthorizedResource[] => {
      const ids = [...body.matchAll(new RegExp(`<${type}Id>([a-z]+-[0-9a-f]+)</${type}Id>`, 'g'))].map(
        (m) => m[1]!,
      );
      const made = (ids.length > 0 ? ids : ['(new)']).map((id) => ({ type, id, tags: {} }));
      fresh.push(...made);
      return made;
    };
    const specTags = tagList(p, 'TagSpecification.1.Tag');
    let resources: AuthorizedResource[];
    let requestTags: Record<string, string> = {};
    switch (action) {
      case 'CreateSnapshot':
        resources = [...existing('volume', p.get('VolumeId')), ...created('snapshot')];
        requestTags = specTags;
        break;
      case 'CreateSnapshots': {
        const volumes = [...body.matchAll(/<volumeId>(vol-[0-9a-f]+)<\/volumeId>/g)].flatMap((m) =>
          existing('volume', m[1]!),
        );
        resources = [
          ...existing('instance', p.get('InstanceSpecification.InstanceId')),
          ...volumes,
          ...created('snapshot'),
        ];
        requestTags = specTags;
        break;
      }
      case 'CreateVolume':
        resources = [...created('volume'), ...existing('snapshot', p.get('SnapshotId'))];
        requestTags = specTags;
        break;
      case 'CreateTags':
        resources = [...p.entries()]
          .filter(([k]) => /^ResourceId\.\d+$/.test(k))
          .map(([, id]) => existing(id.startsWith('vol-') ? 'volume' : 'snapshot', id)[0]!);
        requestTags = tagList(p, 'Tag');
        break;
      case 'AttachVolume':
      case 'DetachVolume': {
        const volume = p.get('VolumeId');
        const instance = p.get('InstanceId') ?? (volume ? attachedTo.get(volume) : undefined) ?? null;
        resources = [...existing('volume', volume), ...existing('instance', instance)];
        break;
      }
      case 'DeleteVolume':
        resources = existing('volume', p.get('VolumeId'));
        break;
      case 'DeleteSnapshot':
        resources = existing('snapshot', p.get('SnapshotId'));
        break;
      default:
        resources = [{ type: '*', id: '*', tags: {} }];
    }
    calls.push({ action: `ec2:${action}`, resources, requestTags, dryRun });
    if (Object.keys(specTags).length > 0 && action !== 'CreateTags') {
      calls.push({
        action: 'ec2:CreateTags',
        resources: fresh,
        requestTags: specTags,
        createAction: action,
        dryRun,
      });
    }
    if (status !== 200 || dryRun) return;
    // What EC2 now knows: tags of what was created or tagged, attachments.
    if (action === 'CreateTags') for (const r of resources) tags.set(r.id, { ...r.tags, ...requestTags });
    for (const r of fresh) tags.set(r.id, specTags);
    if (action === 'AttachVolume') attachedTo.set(p.get('VolumeId')!, p.get('InstanceId')!);
  });
  return { calls: () => [...calls], stop };
}

/** `Prefix.N.Key` / `Prefix.N.Value` pairs of a Query request. */
function tagList(p: URLSearchParams, prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (let n = 1; p.has(`${prefix}.${n}.Key`); n += 1)
    out[p.get(`${prefix}.${n}.Key`)!] = p.get(`${prefix}.${n}.Value`) ?? '';
  return out;
}
