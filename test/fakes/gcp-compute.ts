/**
 * A stateful fake of the Compute Engine REST API (v1) — disks, snapshots, instances with attach and
 * detach, zone and global operations — for the real `@google-cloud/compute` SDK to talk to
 * (`{ apiEndpoint: '127.0.0.1', port, protocol: 'http', fallback: true }`, DESIGN.md §3).
 *
 * Requests are routed by the HTTP rules of Google's published API description (the protos shipped in
 * the SDK, see `gcp-proto.ts`); query parameters, request bodies and every response are checked against
 * the proto messages: an unknown field in a request is refused with 400 as Google does, and a response
 * the fake gets wrong is recorded in `drift` and answered 500, so tests notice. Like the real service:
 * mutating calls return an operation that stays RUNNING for a few polls (or a few seconds) and only
 * then takes effect; a snapshot captures its disk when `createSnapshot` is accepted, then stays CREATING
 * and UPLOADING before READY; a `requestId` seen before returns the first operation; `list` takes a
 * `filter` on labels and fields and pages with `nextPageToken`; errors are Google's JSON
 * (`{"error":{"code":404,"message":…,"errors":[{reason…}]}}`), including 403 naming the missing
 * permission; `googleErrorBody` gives the same JSON for faults injected by the fault proxy (429
 * `rateLimitExceeded`, 503…). Block devices are not its business: a `backing` (the host
 * simulator) is told when a disk is snapshotted, restored, attached, detached or deleted.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ComputeRoute, matchRoute, messageProblems, queryProblems } from './gcp-proto.js';

/** What happens to block storage behind the API. Every method may be slow (loop devices, copies). */
export interface GcpDiskBacking {
  /** Capture `disk`'s blocks as `snapshot` — called while `createSnapshot` is being accepted. */
  snapshot(disk: string, snapshot: string): Promise<void>;
  /** Fill the new `disk` with `snapshot`'s blocks. */
  restore(snapshot: string, disk: string): Promise<void>;
  /** `disk` appears on the VM as /dev/disk/by-id/google-<deviceName>. */
  attach(disk: string, deviceName: string, readOnly: boolean): Promise<void>;
  detach(disk: string, deviceName: string): Promise<void>;
  deleteDisk(disk: string): Promise<void>;
  deleteSnapshot(snapshot: string): Promise<void>;
}

export interface GcpComputeFakeOptions {
  project: string;
  zone: string;
  /** Bearer tokens accepted (the metadata fake's); any bearer token when absent. */
  tokens?: ReadonlySet<string>;
  backing?: GcpDiskBacking;
}

/** Knobs a test may turn at any time. */
export interface GcpComputeFakeSettings {
  /** Polls (get or wait) an operation answers RUNNING before DONE. Default 2. */
  operationPolls: number;
  /** Gets of a snapshot answered CREATING, then UPLOADING, before READY. Default 2 and 2. */
  snapshotPolls: { creating: number; uploading: number };
  /** Without polls, an operation or a snapshot stage also ends after this long. Default 3000 ms. */
  stageMs: number;
  /** Items per list page. Default 500 (Google's maximum). */
  pageSize: number;
  /** When set, new snapshots end FAILED and their operation fails with this message. */
  snapshotFailure?: string;
}

/** An operation of `method` that ends DONE with this error instead of taking effect. */
export interface InjectedOperationError {
  method: string;
  code: string;
  message: string;
  times?: number;
}

export interface RecordedCall {
  method: string;
  verb: string;
  path: string;
  query: Record<string, string>;
  body?: unknown;
  status: number;
}

export interface FakeDisk {
  name: string;
  id: string;
  sizeGb: number;
  status: 'CREATING' | 'READY' | 'DELETING' | 'FAILED';
  labels: Record<string, string>;
  labelFingerprint: string;
  description?: string;
  sourceSnapshot?: string;
  /** Instance names it is attached to. */
  users: string[];
  createdAt: string;
}

export interface FakeSnapshot {
  name: string;
  id: string;
  sourceDisk: string;
  sourceDiskId: string;
  diskSizeGb: number;
  labels: Record<string, string>;
  labelFingerprint: string;
  description?: string;
  storageLocations: string[];
  failure?: string;
  deleting: boolean;
  polls: number;
  createdMs: number;
  createdAt: string;
}

export interface FakeAttachedDisk {
  disk: string;
  deviceName: string;
  mode: 'READ_WRITE' | 'READ_ONLY';
  index: number;
  boot: boolean;
}

export interface FakeInstance {
  name: string;
  id: string;
  disks: FakeAttachedDisk[];
}

interface FakeOperation {
  name: string;
  id: string;
  scope: 'zone' | 'global';
  method: string;
  operationType: string;
  targetLink: string;
  targetId?: string;
  polls: number;
  startedMs: number;
  insertTime: string;
  endTime?: string;
  done: boolean;
  error?: { code: string; message: string };
  effect?: () => Promise<void>;
  completing?: Promise<void>;
}

export interface GcpComputeFake {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  port: number;
  settings: GcpComputeFakeSettings;
  readonly disks: Map<string, FakeDisk>;
  readonly snapshots: Map<string, FakeSnapshot>;
  readonly instances: Map<string, FakeInstance>;
  /** Every API call, in order (CRM `testIamPermissions` as `Projects.TestIamPermissions`). */
  readonly calls: RecordedCall[];
  /** Responses the fake sent that do not match the API description (must stay empty). */
  readonly drift: string[];
  /** Permissions the caller lacks: calls needing one answer 403 naming it. */
  readonly denied: Set<string>;
  /** Every permission a call needed so far (what IAM checked). */
  readonly checkedPermissions: ReadonlySet<string>;
  /** Operation effects the backing failed to carry out (must stay empty). */
  readonly effectErrors: readonly string[];
  /** The API methods the fake implements (`Disks.CreateSnapshot`…). */
  readonly implemented: readonly string[];
  addInstance(name: string): FakeInstance;
  /** A disk that already exists (DATA_DIR's), optionally attached read-write to `instance`. */
  addDisk(
    name: string,
    options?: { sizeGb?: number; attachTo?: { instance: string; deviceName: string } },
  ): FakeDisk;
  injectOperationError(error: InjectedOperationError): void;
  /** Drop every injected operation error. */
  clearInjections(): void;
  /** Complete every pending operation now (tests: settle before asserting the state). */
  settle(): Promise<void>;
  close(): Promise<void>;
}

class FakeHttpError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly domain = 'global',
  ) {
    super(message);
  }
}

const apiBase = 'https://www.googleapis.com/compute/v1';

/** Google's JSON error body (what Compute Engine answers with a 4xx/5xx). */
export function googleErrorBody(status: number, reason: string, message: string, domain = 'global'): string {
  return JSON.stringify({ error: { code: status, message, errors: [{ message, domain, reason }] } });
}

/** Start the fake on a free loopback port. */
export async function startGcpComputeFake(options: GcpComputeFakeOptions): Promise<GcpComputeFake> {
  const { project, zone } = options;
  const projectUrl = `${apiBase}/projects/${project}`;
  const zoneUrl = `${projectUrl}/zones/${zone}`;
  const disks = new Map<string, FakeDisk>();
  const snapshots = new Map<string, FakeSnapshot>();
  const instances = new Map<string, FakeInstance>();
  const operations = new Map<string, FakeOperation>();
  const byRequestId = new Map<string, FakeOperation>();
  const calls: RecordedCall[] = [];
  const drift: string[] = [];
  const denied = new Set<string>();
  const checkedPermissions = new Set<string>();
  const effectErrors: string[] = [];
  let operationErrors: Array<InjectedOperationError & { used: number }> = [];
  let nextId = 1000;
  const settings: GcpComputeFakeSettings = {
    operationPolls: 2,
    snapshotPolls: { creating: 2, uploading: 2 },
    stageMs: 3000,
    pageSize: 500,
  };

  const newId = (): string => String(BigInt(7_000_000_000_000_000) + BigInt(nextId++));
  const fingerprint = (labels: Record<string, string>): string =>
    `${createHash('sha256').update(JSON.stringify(labels)).digest('base64').slice(0, 11)}=`;
  const notFound = (path: string): FakeHttpError =>
    new FakeHttpError(404, 'notFound', `The resource '${path}' was not found`);

  function snapshotStatus(snapshot: FakeSnapshot): string {
    if (snapshot.deleting) return 'DELETING';
    const { creating, uploading } = settings.snapshotPolls;
    const stage = Math.max(snapshot.polls, Math.floor((Date.now() - snapshot.createdMs) / settings.stageMs));
    if (stage < creating) return 'CREATING';
    if (snapshot.failure !== undefined) return 'FAILED';
    return stage < creating + uploading ? 'UPLOADING' : 'READY';
  }

  function startOperation(
    scope: FakeOperation['scope'],
    method: string,
    operationType: string,
    targetLink: string,
    effect: () => Promise<void>,
    requestId: string | undefined,
  ): FakeOperation {
    const key = requestId ? `${scope}:${requestId}` : undefined;
    const seen = key ? byRequestId.get(key) : undefined;
    if (seen) return seen;
    const injected = operationErrors.find((e) => e.method === method && e.used < (e.times ?? 1));
    if (injected) injected.used++;
    const operation: FakeOperation = {
      name: `operation-${Date.now()}-${randomBytes(6).toString('hex')}-${randomUUID().slice(0, 8)}`,
      id: newId(),
      scope,
      method,
      operationType,
      targetLink,
      polls: 0,
      startedMs: Date.now(),
      insertTime: new Date().toISOString(),
      done: false,
      ...(injected ? { error: { code: injected.code, message: injected.message } } : { effect }),
    };
    operations.set(operation.name, operation);
    if (key) byRequestId.set(key, operation);
    return operation;
  }

  /** Run the operation's effect once; an effect that throws FakeHttpError fails the operation. */
  function complete(operation: FakeOperation): Promise<void> {
    operation.completing ??= (async () => {
      try {
        await operation.effect?.();
      } catch (error) {
        // An effect the backing could not carry out fails the operation (and is recorded: a test
        // should expect none), it never poisons the fake.
        if (!(error instanceof FakeHttpError))
          effectErrors.push(`${operation.method}: ${(error as Error).message}`);
        operation.error =
          error instanceof FakeHttpError
            ? { code: error.reason.toUpperCase(), message: error.message }
            : { code: 'INTERNAL_ERROR', message: `Internal error: ${(error as Error).message}` };
      }
      operation.done = true;
      operation.endTime = new Date().toISOString();
    })();
    return operation.completing;
  }

  /** Operations whose time has come take effect before any request is answered, as they would in GCP. */
  async function settleDue(): Promise<void> {
    for (const operation of operations.values()) {
      if (!operation.done && Date.now() - operation.startedMs >= settings.stageMs) await complete(operation);
    }
  }

  function operationJson(operation: FakeOperation): Record<string, unknown> {
    const scopeUrl = operation.scope === 'zone' ? zoneUrl : `${projectUrl}/global`;
    const status = operation.done ? 'DONE' : 'RUNNING';
    return {
      kind: 'compute#operation',
      id: operation.id,
      name: operation.name,
      operationType: operation.operationType,
      targetLink: operation.targetLink,
      ...(operation.targetId ? { targetId: operation.targetId } : {}),
      status,
      user: 'dssnap-test@example.iam.gserviceaccount.com',
      progress: operation.done ? 100 : 0,
      insertTime: operation.insertTime,
      startTime: operation.insertTime,
      ...(operation.endTime ? { endTime: operation.endTime } : {}),
      ...(operation.done && operation.error
        ? {
            error: { errors: [{ code: operation.error.code, message: operation.error.message }] },
            httpErrorStatusCode: 400,
            httpErrorMessage: 'BAD REQUEST',
          }
        : {}),
      ...(operation.scope === 'zone' ? { zone: zoneUrl } : {}),
      selfLink: `${scopeUrl}/operations/${operation.name}`,
    };
  }

  function diskJson(disk: FakeDisk): Record<string, unknown> {
    return {
      kind: 'compute#disk',
      id: disk.id,
      creationTimestamp: disk.createdAt,
      name: disk.name,
      ...(disk.description === undefined ? {} : { description: disk.description }),
      sizeGb: String(disk.sizeGb),
      zone: zoneUrl,
      status: disk.status,
      ...(disk.sourceSnapshot
        ? {
            sourceSnapshot: `${projectUrl}/global/snapshots/${disk.sourceSnapshot}`,
            sourceSnapshotId: snapshots.get(disk.sourceSnapshot)?.id ?? '0',
          }
        : {}),
      type: `${zoneUrl}/diskTypes/pd-balanced`,
      labels: disk.labels,
      labelFingerprint: disk.labelFingerprint,
      users: disk.users.map((instance) => `${zoneUrl}/instances/${instance}`),
      physicalBlockSizeBytes: '4096',
      selfLink: `${zoneUrl}/disks/${disk.name}`,
    };
  }

  function snapshotJson(snapshot: FakeSnapshot): Record<string, unknown> {
    return {
      kind: 'compute#snapshot',
      id: snapshot.id,
      creationTimestamp: snapshot.createdAt,
      name: snapshot.name,
      ...(snapshot.description === undefined ? {} : { description: snapshot.description }),
      status: snapshotStatus(snapshot),
      sourceDisk: `${zoneUrl}/disks/${snapshot.sourceDisk}`,
      sourceDiskId: snapshot.sourceDiskId,
      diskSizeGb: String(snapshot.diskSizeGb),
      storageBytes: '0',
      storageBytesStatus: 'UPDATING',
      storageLocations: snapshot.storageLocations,
      labels: snapshot.labels,
      labelFingerprint: snapshot.labelFingerprint,
      snapshotType: 'STANDARD',
      selfLink: `${projectUrl}/global/snapshots/${snapshot.name}`,
    };
  }

  function instanceJson(instance: FakeInstance): Record<string, unknown> {
    return {
      kind: 'compute#instance',
      id: instance.id,
      name: instance.name,
      zone: zoneUrl,
      status: 'RUNNING',
      machineType: `${zoneUrl}/machineTypes/e2-standard-4`,
      disks: instance.disks.map((attached) => ({
        kind: 'compute#attachedDisk',
        type: 'PERSISTENT',
        mode: attached.mode,
        source: `${zoneUrl}/disks/${attached.disk}`,
        deviceName: attached.deviceName,
        index: attached.index,
        boot: attached.boot,
        autoDelete: attached.boot,
        interface: 'SCSI',
        diskSizeGb: String(disks.get(attached.disk)?.sizeGb ?? 10),
      })),
      selfLink: `${zoneUrl}/instances/${instance.name}`,
    };
  }

  function addInstance(name: string): FakeInstance {
    const instance: FakeInstance = { name, id: newId(), disks: [] };
    instances.set(name, instance);
    return instance;
  }

  function requireZone(params: Record<string, string>): void {
    if (params.project !== project) throw notFound(`projects/${params.project}`);
    if (params.zone !== undefined && params.zone !== zone) {
      throw new FakeHttpError(
        400,
        'invalid',
        `Invalid value for field 'zone': '${params.zone}'. Unknown zone.`,
      );
    }
  }

  function requireDisk(name: string): FakeDisk {
    const disk = disks.get(name);
    if (!disk || disk.status === 'DELETING')
      throw notFound(`projects/${project}/zones/${zone}/disks/${name}`);
    return disk;
  }

  function requireSnapshot(name: string): FakeSnapshot {
    const snapshot = snapshots.get(name);
    if (!snapshot) throw notFound(`projects/${project}/global/snapshots/${name}`);
    return snapshot;
  }

  function requireInstance(name: string): FakeInstance {
    const instance = instances.get(name);
    if (!instance) throw notFound(`projects/${project}/zones/${zone}/instances/${name}`);
    return instance;
  }

  function checkName(name: unknown, kind: string): string {
    if (typeof name !== 'string' || !/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name)) {
      throw new FakeHttpError(
        400,
        'invalid',
        `Invalid value for field '${kind}.name': '${String(name)}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'`,
      );
    }
    return name;
  }

  function checkLabels(labels: unknown, kind: string): Record<string, string> {
    const entries = Object.entries((labels as Record<string, string> | undefined) ?? {});
    if (entries.length > 64) {
      throw new FakeHttpError(
        400,
        'invalid',
        `Invalid value for field '${kind}.labels': too many labels (max 64)`,
      );
    }
    for (const [key, value] of entries) {
      if (!/^[a-z][a-z0-9_-]{0,62}$/.test(key) || !/^[a-z0-9_-]{0,63}$/.test(value)) {
        throw new FakeHttpError(
          400,
          'invalid',
          `Invalid value for field '${kind}.labels': '${key}=${value}'. Label keys must start with a lowercase letter; keys and values may contain only lowercase letters, digits, '_' and '-', at most 63 characters.`,
        );
      }
    }
    return Object.fromEntries(entries);
  }

  /** Evaluate a Compute `filter` (`(labels.k = "v") (name != x) AND …`); AND only, as dssnap uses. */
  function filterOf(expression: string | null): (resource: Record<string, unknown>) => boolean {
    if (!expression?.trim()) return () => true;
    const terms: Array<{ path: string[]; op: '=' | '!='; value: string }> = [];
    const rest = expression.replace(
      /\(?\s*([a-zA-Z][\w.-]*)\s*(!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|([^\s()"]+))\s*\)?/g,
      (_, field: string, op: '=' | '!=', quoted?: string, bare?: string) => {
        terms.push({ path: field.split('.'), op, value: quoted ?? bare ?? '' });
        return ' ';
      },
    );
    if (rest.replace(/\bAND\b/g, '').trim() !== '') {
      throw new FakeHttpError(
        400,
        'invalid',
        `Invalid value for field 'filter': '${expression}'. Invalid list filter expression.`,
      );
    }
    return (resource) =>
      terms.every(({ path, op, value }) => {
        let current: unknown = resource;
        for (const key of path) current = (current as Record<string, unknown> | undefined)?.[key];
        const equal = current !== undefined && String(current) === value;
        return op === '=' ? equal : !equal;
      });
  }

  function page(
    kind: string,
    selfLink: string,
    items: Array<Record<string, unknown>>,
    query: URLSearchParams,
  ): Record<string, unknown> {
    const matching = items.filter(filterOf(query.get('filter')));
    const size = Math.min(
      Number(query.get('maxResults') ?? settings.pageSize) || settings.pageSize,
      settings.pageSize,
    );
    const token = query.get('pageToken');
    const start = token ? Number(Buffer.from(token, 'base64').toString('utf8')) : 0;
    const slice = matching.slice(start, start + size);
    const next =
      start + size < matching.length ? Buffer.from(String(start + size)).toString('base64') : undefined;
    return {
      kind,
      id: selfLink.replace(`${apiBase}/`, ''),
      items: slice,
      ...(next ? { nextPageToken: next } : {}),
      selfLink,
    };
  }

  type Handler = (
    params: Record<string, string>,
    query: URLSearchParams,
    body: Record<string, unknown>,
  ) => Promise<Record<string, unknown>>;

  const backing = options.backing;
  const handlers: Record<string, Handler> = {
    'Instances.Get': async (params) => instanceJson(requireInstance(params.instance!)),

    'Instances.AttachDisk': async (params, query, body) => {
      const instance = requireInstance(params.instance!);
      const diskName =
        String(body.source ?? '')
          .split('/')
          .pop() ?? '';
      const disk = requireDisk(diskName);
      const mode = body.mode === 'READ_ONLY' ? 'READ_ONLY' : 'READ_WRITE';
      const deviceName = typeof body.deviceName === 'string' ? body.deviceName : diskName;
      if (disk.status !== 'READY') {
        throw new FakeHttpError(
          400,
          'resourceNotReady',
          `The resource 'projects/${project}/zones/${zone}/disks/${diskName}' is not ready`,
        );
      }
      if (instance.disks.some((d) => d.deviceName === deviceName)) {
        throw new FakeHttpError(
          400,
          'invalid',
          `Invalid value for field 'resource.deviceName': '${deviceName}'. A disk with this device name is already attached.`,
        );
      }
      if (disk.users.length > 0 && mode === 'READ_WRITE') {
        throw new FakeHttpError(
          400,
          'resourceInUseByAnotherResource',
          `The disk resource 'projects/${project}/zones/${zone}/disks/${diskName}' is already being used by 'projects/${project}/zones/${zone}/instances/${disk.users[0]}'`,
        );
      }
      const operation = startOperation(
        'zone',
        'Instances.AttachDisk',
        'attachDisk',
        `${zoneUrl}/instances/${instance.name}`,
        async () => {
          await backing?.attach(diskName, deviceName, mode === 'READ_ONLY');
          instance.disks.push({
            disk: diskName,
            deviceName,
            mode,
            index: instance.disks.length,
            boot: false,
          });
          disk.users.push(instance.name);
        },
        query.get('requestId') ?? undefined,
      );
      operation.targetId = instance.id;
      return operationJson(operation);
    },

    'Instances.DetachDisk': async (params, query) => {
      const instance = requireInstance(params.instance!);
      const deviceName = query.get('deviceName') ?? '';
      const attached = instance.disks.find((d) => d.deviceName === deviceName);
      if (!attached) {
        throw new FakeHttpError(
          400,
          'invalid',
          `Invalid value for field 'deviceName': '${deviceName}'. No attached disk found with device name '${deviceName}'`,
        );
      }
      const operation = startOperation(
        'zone',
        'Instances.DetachDisk',
        'detachDisk',
        `${zoneUrl}/instances/${instance.name}`,
        async () => {
          if (!instance.disks.includes(attached)) return;
          await backing?.detach(attached.disk, deviceName);
          instance.disks.splice(instance.disks.indexOf(attached), 1);
          const disk = disks.get(attached.disk);
          if (disk) disk.users = disk.users.filter((user) => user !== instance.name);
        },
        query.get('requestId') ?? undefined,
      );
      operation.targetId = instance.id;
      return operationJson(operation);
    },

    'Disks.Get': async (params) => diskJson(requireDisk(params.disk!)),

    'Disks.List': async (_params, query) =>
      page('compute#diskList', `${zoneUrl}/disks`, [...disks.values()].map(diskJson), query),

    'Disks.Insert': async (_params, query, body) => {
      const name = checkName(body.name, 'resource');
      const labels = checkLabels(body.labels, 'resource');
      if (disks.has(name)) {
        throw new FakeHttpError(
          409,
          'alreadyExists',
          `The resource 'projects/${project}/zones/${zone}/disks/${name}' already exists`,
        );
      }
      const sourceName =
        typeof body.sourceSnapshot === 'string' ? body.sourceSnapshot.split('/').pop() : undefined;
      const source = sourceName === undefined ? undefined : requireSnapshot(sourceName);
      if (source && snapshotStatus(source) !== 'READY') {
        throw new FakeHttpError(
          400,
          'resourceNotReady',
          `The resource 'projects/${project}/global/snapshots/${source.name}' is not ready`,
        );
      }
      const requestId = query.get('requestId') ?? undefined;
      if (requestId && byRequestId.has(`zone:${requestId}`))
        return operationJson(byRequestId.get(`zone:${requestId}`)!);
      const disk: FakeDisk = {
        name,
        id: newId(),
        sizeGb: Number(body.sizeGb ?? source?.diskSizeGb ?? 10),
        status: 'CREATING',
        labels,
        labelFingerprint: fingerprint(labels),
        ...(typeof body.description === 'string' ? { description: body.description } : {}),
        ...(source ? { sourceSnapshot: source.name } : {}),
        users: [],
        createdAt: new Date().toISOString(),
      };
      const operation = startOperation(
        'zone',
        'Disks.Insert',
        'insert',
        `${zoneUrl}/disks/${name}`,
        async () => {
          if (source) await backing?.restore(source.name, name);
          disk.status = 'READY';
        },
        requestId,
      );
      if (operation.error) disk.status = 'FAILED';
      disks.set(name, disk);
      operation.targetId = disk.id;
      return operationJson(operation);
    },

    'Disks.Delete': async (params, query) => {
      const disk = requireDisk(params.disk!);
      if (disk.status === 'CREATING') {
        throw new FakeHttpError(
          400,
          'resourceNotReady',
          `The resource 'projects/${project}/zones/${zone}/disks/${disk.name}' is not ready`,
        );
      }
      if (disk.users.length > 0) {
        throw new FakeHttpError(
          400,
          'resourceInUseByAnotherResource',
          `The disk resource 'projects/${project}/zones/${zone}/disks/${disk.name}' is already being used by 'projects/${project}/zones/${zone}/instances/${disk.users[0]}'`,
        );
      }
      const operation = startOperation(
        'zone',
        'Disks.Delete',
        'delete',
        `${zoneUrl}/disks/${disk.name}`,
        async () => {
          await backing?.deleteDisk(disk.name);
          disks.delete(disk.name);
        },
        query.get('requestId') ?? undefined,
      );
      if (!operation.error) disk.status = 'DELETING';
      operation.targetId = disk.id;
      return operationJson(operation);
    },

    'Disks.CreateSnapshot': async (params, query, body) => {
      const disk = requireDisk(params.disk!);
      const name = checkName(body.name, 'resource');
      const labels = checkLabels(body.labels, 'resource');
      const requestId = query.get('requestId') ?? undefined;
      if (requestId && byRequestId.has(`zone:${requestId}`))
        return operationJson(byRequestId.get(`zone:${requestId}`)!);
      if (snapshots.has(name)) {
        throw new FakeHttpError(
          409,
          'alreadyExists',
          `The resource 'projects/${project}/global/snapshots/${name}' already exists`,
        );
      }
      const snapshot: FakeSnapshot = {
        name,
        id: newId(),
        sourceDisk: disk.name,
        sourceDiskId: disk.id,
        diskSizeGb: disk.sizeGb,
        labels,
        labelFingerprint: fingerprint(labels),
        ...(typeof body.description === 'string' ? { description: body.description } : {}),
        storageLocations: Array.isArray(body.storageLocations) ? (body.storageLocations as string[]) : ['us'],
        ...(settings.snapshotFailure === undefined ? {} : { failure: settings.snapshotFailure }),
        deleting: false,
        polls: 0,
        createdMs: Date.now(),
        createdAt: new Date().toISOString(),
      };
      const failure = snapshot.failure;
      const operation = startOperation(
        'zone',
        'Disks.CreateSnapshot',
        'createSnapshot',
        `${zoneUrl}/disks/${disk.name}`,
        async () => {
          if (failure !== undefined) throw new FakeHttpError(400, 'snapshot_failed', failure);
        },
        requestId,
      );
      operation.targetId = disk.id;
      if (operation.error) return operationJson(operation);
      // The point in time: the disk's blocks are captured as the call is accepted.
      await backing?.snapshot(disk.name, name);
      snapshots.set(name, snapshot);
      return operationJson(operation);
    },

    'Snapshots.Get': async (params) => {
      const snapshot = requireSnapshot(params.snapshot!);
      snapshot.polls++;
      return snapshotJson(snapshot);
    },

    'Snapshots.List': async (_params, query) =>
      page(
        'compute#snapshotList',
        `${projectUrl}/global/snapshots`,
        [...snapshots.values()].map(snapshotJson),
        query,
      ),

    'Snapshots.Delete': async (params, query) => {
      const snapshot = requireSnapshot(params.snapshot!);
      const status = snapshotStatus(snapshot);
      const restoring = [...disks.values()].find(
        (d) => d.sourceSnapshot === snapshot.name && d.status === 'CREATING',
      );
      if (restoring) {
        throw new FakeHttpError(
          400,
          'resourceInUseByAnotherResource',
          `The snapshot resource 'projects/${project}/global/snapshots/${snapshot.name}' is already being used by 'projects/${project}/zones/${zone}/disks/${restoring.name}'`,
        );
      }
      if (status === 'CREATING') {
        throw new FakeHttpError(
          400,
          'resourceNotReady',
          `The resource 'projects/${project}/global/snapshots/${snapshot.name}' is not ready`,
        );
      }
      const operation = startOperation(
        'global',
        'Snapshots.Delete',
        'delete',
        `${projectUrl}/global/snapshots/${snapshot.name}`,
        async () => {
          await backing?.deleteSnapshot(snapshot.name);
          snapshots.delete(snapshot.name);
        },
        query.get('requestId') ?? undefined,
      );
      if (!operation.error) snapshot.deleting = true;
      operation.targetId = snapshot.id;
      return operationJson(operation);
    },

    'Snapshots.SetLabels': async (params, query, body) => {
      const snapshot = requireSnapshot(params.snapshot ?? params.resource!);
      const labels = checkLabels(body.labels, 'globalSetLabelsRequest');
      if (body.labelFingerprint !== snapshot.labelFingerprint) {
        throw new FakeHttpError(
          412,
          'conditionNotMet',
          'Labels fingerprint either invalid or resource labels have changed',
          'global',
        );
      }
      const operation = startOperation(
        'global',
        'Snapshots.SetLabels',
        'setLabels',
        `${projectUrl}/global/snapshots/${snapshot.name}`,
        async () => {
          snapshot.labels = labels;
          snapshot.labelFingerprint = fingerprint(labels);
        },
        query.get('requestId') ?? undefined,
      );
      operation.targetId = snapshot.id;
      return operationJson(operation);
    },

    'ZoneOperations.Get': async (params) => pollOperation(params, 'zone'),
    'ZoneOperations.Wait': async (params) => pollOperation(params, 'zone'),
    'GlobalOperations.Get': async (params) => pollOperation(params, 'global'),
    'GlobalOperations.Wait': async (params) => pollOperation(params, 'global'),
  };

  async function pollOperation(
    params: Record<string, string>,
    scope: FakeOperation['scope'],
  ): Promise<Record<string, unknown>> {
    const operation = operations.get(params.operation!);
    if (!operation || operation.scope !== scope) {
      throw notFound(
        `projects/${project}/${scope === 'zone' ? `zones/${zone}` : 'global'}/operations/${params.operation}`,
      );
    }
    operation.polls++;
    if (!operation.done && operation.polls >= settings.operationPolls) await complete(operation);
    return operationJson(operation);
  }

  /** The IAM permissions a call needs, as Compute Engine checks them. */
  function permissionsFor(
    method: string,
    params: Record<string, string>,
    body: Record<string, unknown>,
  ): Array<[string, string]> {
    const disk = `projects/${project}/zones/${zone}/disks/${params.disk ?? ''}`;
    const instance = `projects/${project}/zones/${zone}/instances/${params.instance ?? ''}`;
    const snapshot = `projects/${project}/global/snapshots/${params.snapshot ?? params.resource ?? ''}`;
    const labelled = Object.keys((body.labels as object | undefined) ?? {}).length > 0;
    switch (method) {
      case 'Instances.Get':
        return [['compute.instances.get', instance]];
      case 'Instances.AttachDisk':
        return [
          ['compute.instances.attachDisk', instance],
          [
            body.mode === 'READ_ONLY' ? 'compute.disks.useReadOnly' : 'compute.disks.use',
            String(body.source ?? ''),
          ],
        ];
      case 'Instances.DetachDisk':
        return [['compute.instances.detachDisk', instance]];
      case 'Disks.Get':
        return [['compute.disks.get', disk]];
      case 'Disks.List':
        return [['compute.disks.list', `projects/${project}/zones/${zone}`]];
      case 'Disks.Insert':
        return [
          ['compute.disks.create', `projects/${project}/zones/${zone}/disks/${String(body.name)}`],
          ...(labelled
            ? ([
                ['compute.disks.setLabels', `projects/${project}/zones/${zone}/disks/${String(body.name)}`],
              ] as Array<[string, string]>)
            : []),
          ...(body.sourceSnapshot
            ? ([['compute.snapshots.useReadOnly', String(body.sourceSnapshot)]] as Array<[string, string]>)
            : []),
        ];
      case 'Disks.Delete':
        return [['compute.disks.delete', disk]];
      case 'Disks.CreateSnapshot':
        return [
          ['compute.disks.createSnapshot', disk],
          ['compute.snapshots.create', `projects/${project}/global/snapshots/${String(body.name)}`],
          ...(labelled
            ? ([
                ['compute.snapshots.setLabels', `projects/${project}/global/snapshots/${String(body.name)}`],
              ] as Array<[string, string]>)
            : []),
        ];
      case 'Snapshots.Get':
        return [['compute.snapshots.get', snapshot]];
      case 'Snapshots.List':
        return [['compute.snapshots.list', `projects/${project}`]];
      case 'Snapshots.Delete':
        return [['compute.snapshots.delete', snapshot]];
      case 'Snapshots.SetLabels':
        return [['compute.snapshots.setLabels', snapshot]];
      case 'ZoneOperations.Get':
      case 'ZoneOperations.Wait':
        return [
          ['compute.zoneOperations.get', `projects/${project}/zones/${zone}/operations/${params.operation}`],
        ];
      case 'GlobalOperations.Get':
      case 'GlobalOperations.Wait':
        return [
          ['compute.globalOperations.get', `projects/${project}/global/operations/${params.operation}`],
        ];
      default:
        return [];
    }
  }

  async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://compute');
    const raw = await readBody(req);
    const verb = req.method ?? 'GET';
    const record: RecordedCall = {
      method: '?',
      verb,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      status: 0,
    };
    calls.push(record);
    const reply = (status: number, body: unknown): void => {
      record.status = status;
      res.statusCode = status;
      res.setHeader('Content-Type', 'application/json; charset=UTF-8');
      res.end(JSON.stringify(body));
    };
    const fail = (error: FakeHttpError): void =>
      reply(
        error.status,
        JSON.parse(googleErrorBody(error.status, error.reason, error.message, error.domain)),
      );
    try {
      if (!authorised(req.headers.authorization)) {
        reply(401, {
          error: {
            code: 401,
            message:
              'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
            errors: [
              {
                message: 'Invalid Credentials',
                domain: 'global',
                reason: 'authError',
                location: 'Authorization',
                locationType: 'header',
              },
            ],
            status: 'UNAUTHENTICATED',
          },
        });
        return;
      }
      let body: Record<string, unknown> = {};
      if (raw.trim() !== '') {
        try {
          body = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          throw new FakeHttpError(400, 'parseError', 'Invalid JSON payload received.');
        }
      }
      record.body = body;
      const crm = /^\/v1\/projects\/([^/:]+):testIamPermissions$/.exec(url.pathname);
      if (crm && verb === 'POST') {
        record.method = 'Projects.TestIamPermissions';
        const asked = Array.isArray(body.permissions) ? (body.permissions as string[]) : [];
        reply(200, crm[1] === project ? { permissions: asked.filter((p) => !denied.has(p)) } : {});
        return;
      }
      const match = matchRoute(verb, url.pathname);
      if (!match)
        throw new FakeHttpError(
          404,
          'notFound',
          `The requested URL ${url.pathname} was not found on this server.`,
        );
      const { route, params } = match;
      record.method = route.id;
      const problems = [...queryProblems(route, url.searchParams), ...bodyProblems(route, body, raw)];
      if (problems.length > 0)
        throw new FakeHttpError(400, 'badRequest', `Invalid JSON payload received. ${problems.join(' ')}`);
      requireZone(params);
      for (const [permission, resource] of permissionsFor(route.id, params, body)) {
        checkedPermissions.add(permission);
        if (denied.has(permission)) {
          throw new FakeHttpError(403, 'forbidden', `Required '${permission}' permission for '${resource}'`);
        }
      }
      const handler = handlers[route.id];
      if (!handler)
        throw new FakeHttpError(501, 'notImplemented', `The GCP fake does not implement ${route.id}`);
      await settleDue();
      const result = await handler(params, url.searchParams, body);
      const drifted = messageProblems(route.responseType, result);
      if (drifted.length > 0) {
        drift.push(...drifted.map((p) => `${route.id}: ${p}`));
        throw new FakeHttpError(
          500,
          'backendError',
          `The GCP fake answered outside the API description: ${drifted.join('; ')}`,
        );
      }
      reply(200, result);
    } catch (error) {
      if (error instanceof FakeHttpError) fail(error);
      else fail(new FakeHttpError(500, 'backendError', `GCP fake failure: ${(error as Error).message}`));
    }
  }

  function authorised(header: string | undefined): boolean {
    const token = /^Bearer (.+)$/.exec(header ?? '')?.[1];
    if (!token) return false;
    return options.tokens ? options.tokens.has(token) : true;
  }

  const server: Server = createServer((req, res) => {
    void answer(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    settings,
    disks,
    snapshots,
    instances,
    calls,
    drift,
    denied,
    checkedPermissions,
    effectErrors,
    implemented: Object.keys(handlers),
    addInstance,
    addDisk(name, diskOptions = {}) {
      const disk: FakeDisk = {
        name,
        id: newId(),
        sizeGb: diskOptions.sizeGb ?? 10,
        status: 'READY',
        labels: {},
        labelFingerprint: fingerprint({}),
        users: [],
        createdAt: new Date().toISOString(),
      };
      disks.set(name, disk);
      const attachTo = diskOptions.attachTo;
      if (attachTo) {
        const instance = instances.get(attachTo.instance) ?? addInstance(attachTo.instance);
        instance.disks.push({
          disk: name,
          deviceName: attachTo.deviceName,
          mode: 'READ_WRITE',
          index: instance.disks.length,
          boot: false,
        });
        disk.users.push(instance.name);
      }
      return disk;
    },
    injectOperationError(error) {
      operationErrors.push({ ...error, used: 0 });
    },
    clearInjections() {
      operationErrors = [];
    },
    async settle() {
      for (const operation of operations.values()) if (!operation.done) await complete(operation);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Problems of the request body as the message the route carries in its body. */
function bodyProblems(route: ComputeRoute, body: Record<string, unknown>, raw: string): string[] {
  if (!route.bodyField) return [];
  if (raw.trim() === '') return [`Missing request body for ${route.bodyField}.`];
  return messageProblems(route.bodyType!, body, route.bodyField);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      data += chunk;
    });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}
