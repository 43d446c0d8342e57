/**
 * The three lists of issue 8 and their comparison: the actions a provider really called (recorded by
 * the fakes and the fault proxy, each HTTP call mapped to the IAM action / GCP permission / Azure RBAC
 * action it needs), the provider's declared permission list, and what the Terraform example grants
 * (parsed from its HCL with @cdktf/hcl2json: no provider needs to be downloaded).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from '@cdktf/hcl2json';
import type { FaultProxy } from '../fakes/fault-proxy.js';

export const examplesDir = join(import.meta.dirname, '..', '..', 'terraform-examples');

/**
 * The EC2 actions of every request through the proxy from now on. A DryRun request (doctor) is left
 * out: it only probes the declared list, so counting it would make the check agree with itself. A
 * request that tags at creation (TagSpecification.N) also needs ec2:CreateTags.
 */
export function recordAwsActions(proxy: FaultProxy): { actions(): Set<string>; stop(): void } {
  const actions = new Set<string>();
  const stop = proxy.onExchange(({ request }) => {
    const params = new URLSearchParams(request.body);
    if (!params.has('Action') || params.get('DryRun') === 'true') return;
    actions.add(`ec2:${params.get('Action')}`);
    if ([...params.keys()].some((key) => key.startsWith('TagSpecification.'))) actions.add('ec2:CreateTags');
  });
  return { actions: () => new Set(actions), stop };
}

/**
 * Azure calls not counted as the provider's: doctor reading the identity's own effective permissions
 * (Microsoft.Authorization permissions list), which we take to need no role — unproven here; if a
 * tenant refused it, only doctor's permission check would fail, never a backup.
 */
const azureUngranted = new Set(['Microsoft.Authorization/permissions/read']);

/** The RBAC actions of the ARM fake's requests (the fake names each one's action, as ARM checks it). */
export function azureActionsCalled(requests: ReadonlyArray<{ action: string }>): Set<string> {
  return new Set(requests.map((r) => r.action).filter((action) => !azureUngranted.has(action)));
}

type Hcl = Record<string, unknown>;

/** Every `.tf` file of an example, parsed to JSON and merged block type by block type. */
export async function parseExample(dir: string): Promise<Hcl> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.tf')).sort();
  const merged: Record<string, Record<string, unknown>> = {};
  for (const file of files) {
    const json = (await parse(file, await readFile(join(dir, file), 'utf8'))) as Hcl;
    for (const [blockType, blocks] of Object.entries(json)) {
      if (blockType === 'locals') {
        merged.locals = { ...merged.locals, ...Object.assign({}, ...(blocks as Hcl[])) };
      } else {
        merged[blockType] = deepMerge(merged[blockType] ?? {}, blocks as Hcl);
      }
    }
  }
  return merged;
}

function deepMerge(a: Hcl, b: Hcl): Hcl {
  const out: Hcl = { ...a };
  for (const [key, value] of Object.entries(b)) {
    const existing = out[key];
    out[key] =
      existing && typeof existing === 'object' && !Array.isArray(existing)
        ? deepMerge(existing as Hcl, value as Hcl)
        : value;
  }
  return out;
}

/** A path into parsed HCL; throws naming the path when the example's shape changed. */
function at(root: Hcl, ...path: Array<string | number>): unknown {
  let node: unknown = root;
  for (const key of path) {
    node = (node as Record<string | number, unknown> | undefined)?.[key];
    if (node === undefined) throw new Error(`terraform example: nothing at ${path.join('.')}`);
  }
  return node;
}

function strings(value: unknown, where: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && !v.includes('${'))) {
    throw new Error(
      `terraform example: ${where} must be a literal list of strings, got ${JSON.stringify(value)}`,
    );
  }
  return value as string[];
}

/** The EC2 actions of every statement of `data.aws_iam_policy_document.dssnap`. */
export async function awsGranted(): Promise<Set<string>> {
  const hcl = await parseExample(join(examplesDir, 'aws'));
  const statements = at(hcl, 'data', 'aws_iam_policy_document', 'dssnap', 0, 'statement') as Hcl[];
  return new Set(statements.flatMap((s, i) => strings(s.actions, `dssnap statement ${i} actions`)));
}

/** The permissions of the custom role for an attach mode: `local.permissions` plus the mode's one. */
export async function gcpGranted(attachMode: 'READ_ONLY' | 'READ_WRITE'): Promise<Set<string>> {
  const hcl = await parseExample(join(examplesDir, 'gcp'));
  const role = at(hcl, 'resource', 'google_project_iam_custom_role', 'dssnap', 0, 'permissions');
  // The HCL expression, as hcl2json writes it: `${…}` here is Terraform's, not a template literal.
  const expected = ['$', '{concat(local.permissions, [local.attach_permission[var.attach_mode]])}'].join('');
  if (role !== expected) {
    throw new Error(`terraform example: the gcp role's permissions are no longer read from locals: ${role}`);
  }
  const byMode = at(hcl, 'locals', 'attach_permission') as Record<string, string>;
  return new Set([...strings(at(hcl, 'locals', 'permissions'), 'local.permissions'), byMode[attachMode]!]);
}

/** The actions of `azurerm_role_definition.dssnap` (its not_actions must be empty). */
export async function azureGranted(): Promise<Set<string>> {
  const hcl = await parseExample(join(examplesDir, 'azure'));
  const permissions = at(hcl, 'resource', 'azurerm_role_definition', 'dssnap', 0, 'permissions', 0) as Hcl;
  if (strings(permissions.not_actions ?? [], 'not_actions').length > 0) {
    throw new Error('terraform example: the azure role has not_actions: grant exactly, exclude nothing');
  }
  return new Set(strings(permissions.actions, 'azurerm_role_definition.dssnap actions'));
}

export interface ActionLists {
  called: Iterable<string>;
  declared: Iterable<string>;
  granted: Iterable<string>;
}

/**
 * One line per action the three lists do not all hold, naming which hold it; [] when they agree.
 * Azure action names are case-insensitive: compared as such.
 */
export function disagreements(lists: ActionLists, options: { caseInsensitive?: boolean } = {}): string[] {
  const norm = (a: string): string => (options.caseInsensitive ? a.toLowerCase() : a);
  const shown = new Map<string, string>();
  const setOf = (actions: Iterable<string>): Set<string> =>
    new Set(
      [...actions].map((a) => {
        if (!shown.has(norm(a))) shown.set(norm(a), a);
        return norm(a);
      }),
    );
  const called = setOf(lists.called);
  const declared = setOf(lists.declared);
  const granted = setOf(lists.granted);
  return [...shown.keys()]
    .sort()
    .filter((a) => !(called.has(a) && declared.has(a) && granted.has(a)))
    .map(
      (a) =>
        `${shown.get(a)}: ${called.has(a) ? 'called' : 'NOT called'} by the provider, ${
          declared.has(a) ? 'declared' : 'NOT declared'
        } in its permissions.ts, ${granted.has(a) ? 'granted' : 'NOT granted'} by the Terraform example`,
    );
}

/**
 * The declared permissions that `dssnap doctor --permissions` does not show as a row of its table —
 * `ACTION  STATUS  WHY` with a status matching `status` — as `action: reason`; [] when all are there.
 */
export function missingTableRows(
  stdout: string,
  permissions: ReadonlyArray<{ action: string; reason: string }>,
  status: RegExp,
): string[] {
  const rows = new Map(
    stdout
      .split('\n')
      .map((line) => /^(\S+) +(\S+) +(.+)$/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, { status: m[2]!, reason: m[3]! }]),
  );
  return permissions
    .filter(({ action, reason }) => {
      const row = rows.get(action);
      return !row || !status.test(row.status) || row.reason !== reason;
    })
    .map(({ action, reason }) => `${action}: ${reason}`);
}
