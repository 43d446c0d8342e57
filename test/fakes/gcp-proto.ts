/**
 * Google's published description of the Compute Engine API, as the SDK ships it
 * (`@google-cloud/compute/build/protos/protos.json`): the HTTP rule of every method and the fields of
 * every message. The GCP fake routes requests with these rules and checks every request it receives and
 * every response it sends against these messages, so it cannot drift into shapes the real API refuses.
 */
import { createRequire } from 'node:module';

interface ProtoField {
  type: string;
  rule?: 'repeated';
  keyType?: string;
}

interface ProtoNode {
  fields?: Record<string, ProtoField>;
  values?: Record<string, number>;
  methods?: Record<string, ProtoMethod>;
  nested?: Record<string, ProtoNode>;
}

interface ProtoMethod {
  requestType: string;
  responseType: string;
  options?: Record<string, string>;
}

/** One REST method of the API: `Disks.CreateSnapshot` → POST /compute/v1/…/{disk}/createSnapshot. */
export interface ComputeRoute {
  /** `Service.Method`, e.g. `Disks.CreateSnapshot`. */
  id: string;
  verb: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  template: string;
  requestType: string;
  responseType: string;
  /** The request field carried in the body (camelCase), when the rule has one. */
  bodyField?: string;
  /** That field's message type (e.g. `Snapshot` for `snapshotResource`). */
  bodyType?: string;
  /** `ZoneOperations` / `GlobalOperations` when the method returns a long-running operation. */
  operationService?: string;
  pattern: RegExp;
  params: string[];
  literalLength: number;
}

export interface RouteMatch {
  route: ComputeRoute;
  params: Record<string, string>;
}

const scalarNumbers = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', 'double', 'float']);
const scalar64 = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
/** Query parameters every Google API accepts besides the request fields (system parameters). */
const systemParameters = new Set(['alt', '$alt', 'fields', 'prettyPrint', 'key', 'quotaUser', 'userIp']);

let loaded: { v1: Record<string, ProtoNode>; routes: ComputeRoute[] } | undefined;

function load(): { v1: Record<string, ProtoNode>; routes: ComputeRoute[] } {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const root = require('@google-cloud/compute/build/protos/protos.json') as {
    nested: Record<string, ProtoNode>;
  };
  const v1 = root.nested.google!.nested!.cloud!.nested!.compute!.nested!.v1!.nested!;
  const routes: ComputeRoute[] = [];
  for (const [serviceName, service] of Object.entries(v1)) {
    for (const [methodName, method] of Object.entries(service.methods ?? {})) {
      const options = method.options ?? {};
      for (const verb of ['get', 'post', 'put', 'patch', 'delete'] as const) {
        const template = options[`(google.api.http).${verb}`];
        if (!template) continue;
        const params: string[] = [];
        const source = template
          .replace(/[.*+?^$()|[\]\\]/g, '\\$&')
          .replace(/\{(\w+)\}/g, (_, name: string) => {
            params.push(camel(name));
            return '([^/]+)';
          });
        const body = options['(google.api.http).body'];
        const bodyField = body && body !== '*' ? camel(body) : undefined;
        const bodyType = bodyField ? v1[method.requestType]?.fields?.[bodyField]?.type : undefined;
        const operationService = options['(google.cloud.operation_service)'];
        routes.push({
          id: `${serviceName}.${methodName}`,
          verb: verb.toUpperCase() as ComputeRoute['verb'],
          template,
          requestType: method.requestType,
          responseType: method.responseType,
          ...(bodyField ? { bodyField } : {}),
          ...(bodyType ? { bodyType } : {}),
          ...(operationService ? { operationService } : {}),
          pattern: new RegExp(`^${source}$`),
          params,
          literalLength: template.replace(/\{\w+\}/g, '').length,
        });
      }
    }
  }
  // The most literal template wins when two match (never happens in v1, but stay deterministic).
  routes.sort((a, b) => b.literalLength - a.literalLength);
  loaded = { v1, routes };
  return loaded;
}

function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** The route of `verb path` in the published API, with its path parameters decoded; undefined if none. */
export function matchRoute(verb: string, path: string): RouteMatch | undefined {
  for (const route of load().routes) {
    if (route.verb !== verb) continue;
    const found = route.pattern.exec(path);
    if (!found) continue;
    const params: Record<string, string> = {};
    route.params.forEach((name, i) => {
      params[name] = decodeURIComponent(found[i + 1]!);
    });
    return { route, params };
  }
  return undefined;
}

/** The route with this id (`Disks.CreateSnapshot`); throws when the API has no such method. */
export function routeById(id: string): ComputeRoute {
  const route = load().routes.find((r) => r.id === id);
  if (!route) throw new Error(`The Compute API has no method ${id}`);
  return route;
}

/** The fields of a request message that may travel as query parameters (not path, not body). */
export function queryProblems(route: ComputeRoute, query: URLSearchParams): string[] {
  const fields = message(route.requestType).fields ?? {};
  const problems: string[] = [];
  for (const key of query.keys()) {
    if (systemParameters.has(key)) continue;
    if (!fields[key] || route.params.includes(key) || key === route.bodyField) {
      problems.push(`Unknown name "${key}": Cannot bind query parameter.`);
    }
  }
  return problems;
}

/**
 * Problems of `value` as JSON of the message `typeName` (proto3 JSON mapping: camelCase names, 64-bit
 * integers as strings, maps as objects, enums — compute's string fields with a nested enum of the same
 * name — by value name). Empty when it conforms.
 */
export function messageProblems(typeName: string, value: unknown, at = typeName): string[] {
  return checkMessage(message(typeName), value, at);
}

function message(typeName: string): ProtoNode {
  const node = load().v1[typeName];
  if (!node?.fields) throw new Error(`The Compute API has no message ${typeName}`);
  return node;
}

function checkMessage(node: ProtoNode, value: unknown, at: string): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return [`${at}: expected an object, got ${JSON.stringify(value)}`];
  }
  const problems: string[] = [];
  for (const [key, item] of Object.entries(value)) {
    const field = node.fields?.[key];
    if (!field) {
      problems.push(`${at}: unknown field "${key}"`);
      continue;
    }
    if (item === null || item === undefined) continue;
    // An enum: the field's type nested in the message (Operation.status: Status), or a string field
    // with a nested enum of its name (Snapshot.status: string, Snapshot.Status).
    const nestedType = node.nested?.[field.type];
    const enumNode = nestedType?.values
      ? nestedType
      : node.nested?.[key.charAt(0).toUpperCase() + key.slice(1)];
    const type = nestedType?.values ? 'string' : field.type;
    if (field.keyType) {
      if (typeof item !== 'object' || Array.isArray(item)) problems.push(`${at}.${key}: expected a map`);
      else
        for (const [k, v] of Object.entries(item))
          problems.push(...checkValue(type, v, `${at}.${key}.${k}`, undefined, node));
    } else if (field.rule === 'repeated') {
      if (!Array.isArray(item)) problems.push(`${at}.${key}: expected a list`);
      else
        for (const [i, v] of item.entries())
          problems.push(...checkValue(type, v, `${at}.${key}[${i}]`, enumNode, node));
    } else {
      problems.push(...checkValue(type, item, `${at}.${key}`, enumNode, node));
    }
  }
  return problems;
}

function checkValue(
  type: string,
  value: unknown,
  at: string,
  enumNode?: ProtoNode,
  parent?: ProtoNode,
): string[] {
  if (type === 'string') {
    if (typeof value !== 'string') return [`${at}: expected a string, got ${JSON.stringify(value)}`];
    if (enumNode?.values && !Object.hasOwn(enumNode.values, value)) {
      return [`${at}: "${value}" is not one of ${Object.keys(enumNode.values).join(', ')}`];
    }
    return [];
  }
  if (type === 'bool') return typeof value === 'boolean' ? [] : [`${at}: expected a boolean`];
  if (type === 'bytes') return typeof value === 'string' ? [] : [`${at}: expected base64 text`];
  if (scalarNumbers.has(type)) return typeof value === 'number' ? [] : [`${at}: expected a number`];
  if (scalar64.has(type)) {
    const ok = (typeof value === 'string' && /^-?\d+$/.test(value)) || Number.isInteger(value);
    return ok ? [] : [`${at}: expected a 64-bit integer (a string of digits), got ${JSON.stringify(value)}`];
  }
  if (type.includes('.')) return []; // google.protobuf.Any: anything goes
  return checkMessage(parent?.nested?.[type]?.fields ? parent.nested[type]! : message(type), value, at);
}
