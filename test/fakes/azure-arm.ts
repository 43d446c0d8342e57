/**
 * A stateful fake of the Azure Resource Manager Compute API (managed disks, snapshots, virtual machines)
 * over HTTPS, driven by the real `@azure/arm-compute` SDK in tests. It follows Microsoft's REST API
 * specification and its examples (azure-rest-api-specs, DiskRP 2024-03-02 and ComputeRP 2024-07-01;
 * the SDK v25 calls api-versions 2026-03-02 and 2026-04-01 with the same shapes):
 *
 * - URL paths `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Compute/{snapshots|disks|
 *   virtualMachines}/{name}?api-version=…`; case-insensitive names, as ARM's.
 * - PUT of a disk or snapshot answers 202 with the resource (`provisioningState: Updating`) and the
 *   `Azure-AsyncOperation` + `Location` headers; DELETE answers 202 (204 when already gone); PATCH and
 *   the VM's `attachDetachDataDisks` POST answer 202. The operation stays `InProgress` for
 *   `operationPolls` polls of its status URL, then `Succeeded` (or `Failed` with an `error`).
 * - An incremental snapshot's `completionPercent` rises to 100 over `completionPolls` GETs after its
 *   creation succeeded; a disk cannot be made from it before (409 OperationNotAllowed).
 * - Errors in ARM's shape `{"error":{"code","message"}}`: 404 ResourceNotFound / ResourceGroupNotFound,
 *   403 AuthorizationFailed naming the RBAC action (see `deny`), 409 OperationNotAllowed / Conflict, 429
 *   with Retry-After, 401 without a valid bearer token, 400 for invalid bodies and api-versions.
 *
 * Hooks let a host simulator back the disks with loop devices: snapshot = image copy at the moment
 * the PUT is accepted (the point in time), disk from snapshot, attach = device appears on this host.
 */
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** The api-versions the fake serves (the SDK's, and the specification's stable ones). */
export const armApiVersions = {
  disks: ['2024-03-02', '2025-01-02', '2026-03-02'],
  virtualMachines: ['2024-07-01', '2024-11-01', '2025-04-01', '2026-04-01'],
  authorization: ['2015-07-01', '2018-07-01', '2022-04-01'],
} as const;

export type DiskSkuName =
  | 'Standard_LRS'
  | 'Premium_LRS'
  | 'StandardSSD_LRS'
  | 'UltraSSD_LRS'
  | 'Premium_ZRS'
  | 'StandardSSD_ZRS'
  | 'PremiumV2_LRS';

const diskSkus: readonly string[] = [
  'Standard_LRS',
  'Premium_LRS',
  'StandardSSD_LRS',
  'UltraSSD_LRS',
  'Premium_ZRS',
  'StandardSSD_ZRS',
  'PremiumV2_LRS',
];
const snapshotSkus: readonly string[] = ['Standard_LRS', 'Premium_LRS', 'Standard_ZRS'];
const cachingTypes: readonly string[] = ['None', 'ReadOnly', 'ReadWrite'];

export interface FakeDisk {
  id: string;
  name: string;
  resourceGroup: string;
  location: string;
  zones?: string[];
  sku: string;
  tags: Record<string, string>;
  sizeGb: number;
  creationData: Record<string, unknown>;
  provisioningState: 'Updating' | 'Succeeded' | 'Failed';
  managedBy?: string;
  uniqueId: string;
  timeCreated: string;
}

export interface FakeSnapshot {
  id: string;
  name: string;
  resourceGroup: string;
  location: string;
  sku: string;
  tags: Record<string, string>;
  sizeGb: number;
  incremental: boolean;
  creationData: Record<string, unknown>;
  provisioningState: 'Updating' | 'Succeeded' | 'Failed';
  /** For incremental snapshots: 0 … 100. */
  completionPercent?: number;
  uniqueId: string;
  timeCreated: string;
}

export interface FakeDataDisk {
  lun: number;
  diskId: string;
  caching: string;
}

export interface FakeVm {
  id: string;
  name: string;
  resourceGroup: string;
  location: string;
  zone?: string;
  vmId: string;
  vmSize: string;
  dataDisks: FakeDataDisk[];
  /** Id of the VM operation in progress, if any (another one then gets 409 OperationNotAllowed). */
  busyWith?: string;
}

/** Called by the fake at the moments a real host would notice; a throw fails the operation. */
export interface AzureArmHooks {
  /** A snapshot PUT was accepted: the point in time. Copy the source disk's data now. */
  snapshotCreated?(snapshot: FakeSnapshot, source: FakeDisk | FakeSnapshot): Promise<void>;
  /** A disk is being created from a snapshot (before its creation reports Succeeded). */
  diskCreated?(disk: FakeDisk, source: FakeSnapshot): Promise<void>;
  /** An attach completes: the disk's device appears on the VM at `lun`. */
  diskAttached?(vm: FakeVm, disk: FakeDisk, lun: number): Promise<void>;
  /** A detach completes: the device at `lun` disappears. */
  diskDetached?(vm: FakeVm, disk: FakeDisk, lun: number): Promise<void>;
  diskDeleted?(disk: FakeDisk): Promise<void>;
  snapshotDeleted?(snapshot: FakeSnapshot): Promise<void>;
}

export interface AzureArmFakeOptions {
  /** Serve HTTPS with this certificate; plain http without (behind a TLS-terminating proxy). */
  tls?: { cert: string; key: string };
  subscription?: string;
  location?: string;
  /** Polls of an operation's status answered InProgress before it completes. Default 2. */
  operationPolls?: number;
  /** An operation nobody polls completes this long after it started. Default 1000 ms. */
  operationMaxMs?: number;
  /** GETs of a created incremental snapshot before completionPercent reaches 100. Default 2. */
  completionPolls?: number;
  /** Items per page of list answers (`nextLink` beyond). Default 50. */
  pageSize?: number;
  hooks?: AzureArmHooks;
}

/** An ARM-shaped error answered instead of the real one, for `times` matching requests. */
export interface ArmFault {
  /** Which requests: HTTP method and/or the RBAC action they need (e.g. `Microsoft.Compute/snapshots/write`). */
  method?: string;
  action?: string;
  status: number;
  code: string;
  message?: string;
  /** Seconds, sent as the Retry-After header. */
  retryAfter?: number;
  /** How many matching requests fail. Default 1. */
  times?: number;
  /** Matching requests that pass before the first failure. Default 0. */
  after?: number;
}

export interface ArmRequest {
  method: string;
  path: string;
  apiVersion: string | undefined;
  action: string;
  status: number;
  body?: unknown;
  errorCode?: string;
}

export interface AzureArmFake {
  /** `https://127.0.0.1:<port>` (`http://` without `tls`), no trailing slash. */
  url: string;
  port: number;
  subscription: string;
  location: string;
  /** Accept this bearer token (the IMDS fake registers the tokens it issues). */
  acceptToken(token: string): void;
  addResourceGroup(name: string): void;
  addVm(vm: { resourceGroup: string; name: string; zone?: string; vmSize?: string }): FakeVm;
  addDisk(disk: {
    resourceGroup: string;
    name: string;
    sizeGb: number;
    sku?: DiskSkuName;
    zone?: string;
    tags?: Record<string, string>;
  }): FakeDisk;
  /** Attach a disk at setup time (no operation, but the diskAttached hook runs). */
  attach(vmName: string, diskId: string, lun: number): Promise<void>;
  /** Refuse `action` with 403 AuthorizationFailed (its next `times` requests; all until `allow` by default). */
  deny(action: string, times?: number): void;
  allow(action: string): void;
  /** Answer matching requests with an ARM-shaped error (see ArmFault). */
  inject(fault: ArmFault): void;
  clearFaults(): void;
  /** Make the next `count` attachDetachDataDisks calls on the VM fail 409 OperationNotAllowed. */
  busyVm(vmName: string, count: number): void;
  vm(name: string): FakeVm;
  disks(): FakeDisk[];
  snapshots(): FakeSnapshot[];
  readonly requests: ArmRequest[];
  close(): Promise<void>;
}

class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

interface Operation {
  id: string;
  family: 'disk' | 'vm';
  status: 'InProgress' | 'Succeeded' | 'Failed';
  pollsLeft: number;
  startTime: string;
  endTime?: string;
  error?: { code: string; message: string };
  /** Runs once, when the operation completes; may throw an ArmError (the operation then fails). */
  complete: () => Promise<void>;
  /** The body the Location URL answers once succeeded (attachDetachDataDisks: the storage profile). */
  result?: () => unknown;
  /** The resource it changes (lower case): reading it also moves the operation on, as ARM works on. */
  resource: string;
  completing?: Promise<void>;
}

interface Route {
  pattern: RegExp;
  methods: Record<string, { action: string; handler: (match: RouteMatch) => Promise<Reply> }>;
}

interface RouteMatch {
  /** The decoded capture groups: subscription, then resource group and name (or location, kind, id). */
  params: string[];
  path: string;
  body: unknown;
  query: URLSearchParams;
  base: string;
}

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

const computePrefix = '/subscriptions/([^/]+)/resourcegroups/([^/]+)/providers/microsoft\\.compute';

/** Start the fake on 127.0.0.1 (random port); resolves when it listens. */
export async function startAzureArmFake(options: AzureArmFakeOptions): Promise<AzureArmFake> {
  const subscription = options.subscription ?? '00000000-0000-4000-8000-000000000001';
  const location = options.location ?? 'westeurope';
  const operationPolls = options.operationPolls ?? 2;
  const operationMaxMs = options.operationMaxMs ?? 1000;
  const completionPolls = options.completionPolls ?? 2;
  const pageSize = options.pageSize ?? 50;
  const hooks = options.hooks ?? {};

  const groups = new Set<string>();
  const disks = new Map<string, FakeDisk>();
  const snapshots = new Map<string, FakeSnapshot & { readsLeft: number }>();
  const vms = new Map<string, FakeVm & { busyCount: number }>();
  const operations = new Map<string, Operation>();
  const tokens = new Set<string>();
  const denied = new Map<string, number>();
  let faults: Array<ArmFault & { seen: number; failed: number }> = [];
  const requests: ArmRequest[] = [];

  const key = (id: string): string => id.toLowerCase();
  const resourceId = (rg: string, type: string, name: string): string =>
    `/subscriptions/${subscription}/resourceGroups/${rg}/providers/Microsoft.Compute/${type}/${name}`;

  function requireGroup(rg: string): void {
    if (!groups.has(rg.toLowerCase())) {
      throw new ArmError(404, 'ResourceGroupNotFound', `Resource group '${rg}' could not be found.`);
    }
  }

  function notFound(type: string, rg: string, name: string): ArmError {
    return new ArmError(
      404,
      'ResourceNotFound',
      `The Resource 'Microsoft.Compute/${type}/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
    );
  }

  function findDisk(rg: string, name: string): FakeDisk {
    requireGroup(rg);
    const disk = disks.get(key(resourceId(rg, 'disks', name)));
    if (!disk) throw notFound('disks', rg, name);
    return disk;
  }

  function findSnapshot(rg: string, name: string): FakeSnapshot & { readsLeft: number } {
    requireGroup(rg);
    const snapshot = snapshots.get(key(resourceId(rg, 'snapshots', name)));
    if (!snapshot) throw notFound('snapshots', rg, name);
    return snapshot;
  }

  function findVm(rg: string, name: string): FakeVm & { busyCount: number } {
    requireGroup(rg);
    const vm = vms.get(key(resourceId(rg, 'virtualMachines', name)));
    if (!vm) throw notFound('virtualMachines', rg, name);
    return vm;
  }

  // --- Representations, as the specification's examples show them ---

  function diskJson(disk: FakeDisk): unknown {
    return {
      id: disk.id,
      name: disk.name,
      type: 'Microsoft.Compute/disks',
      location: disk.location,
      tags: disk.tags,
      sku: { name: disk.sku, tier: disk.sku.startsWith('Premium') ? 'Premium' : 'Standard' },
      ...(disk.zones ? { zones: disk.zones } : {}),
      ...(disk.managedBy ? { managedBy: disk.managedBy } : {}),
      properties: {
        creationData: disk.creationData,
        diskSizeGB: disk.sizeGb,
        diskSizeBytes: disk.sizeGb * 1024 ** 3,
        uniqueId: disk.uniqueId,
        timeCreated: disk.timeCreated,
        provisioningState: disk.provisioningState,
        diskState: disk.managedBy ? 'Attached' : 'Unattached',
        encryption: { type: 'EncryptionAtRestWithPlatformKey' },
        networkAccessPolicy: 'AllowAll',
        publicNetworkAccess: 'Enabled',
      },
    };
  }

  function snapshotJson(snapshot: FakeSnapshot): unknown {
    return {
      id: snapshot.id,
      name: snapshot.name,
      type: 'Microsoft.Compute/snapshots',
      location: snapshot.location,
      tags: snapshot.tags,
      sku: { name: snapshot.sku, tier: 'Standard' },
      properties: {
        creationData: snapshot.creationData,
        diskSizeGB: snapshot.sizeGb,
        diskSizeBytes: snapshot.sizeGb * 1024 ** 3,
        incremental: snapshot.incremental,
        ...(snapshot.incremental ? { incrementalSnapshotFamilyId: snapshot.uniqueId } : {}),
        ...(snapshot.completionPercent === undefined
          ? {}
          : { completionPercent: snapshot.completionPercent }),
        uniqueId: snapshot.uniqueId,
        timeCreated: snapshot.timeCreated,
        provisioningState: snapshot.provisioningState,
        diskState: 'Unattached',
        encryption: { type: 'EncryptionAtRestWithPlatformKey' },
        networkAccessPolicy: 'AllowAll',
      },
    };
  }

  function storageProfileJson(vm: FakeVm): Record<string, unknown> {
    return {
      osDisk: {
        osType: 'Linux',
        name: `${vm.name}_OsDisk_1`,
        createOption: 'FromImage',
        caching: 'ReadWrite',
        managedDisk: {
          storageAccountType: 'Premium_LRS',
          id: resourceId(vm.resourceGroup, 'disks', `${vm.name}_OsDisk_1`),
        },
        diskSizeGB: 30,
      },
      dataDisks: vm.dataDisks.map((dataDisk) => {
        const disk = disks.get(key(dataDisk.diskId));
        return {
          lun: dataDisk.lun,
          name: disk?.name ?? dataDisk.diskId.split('/').pop(),
          createOption: 'Attach',
          caching: dataDisk.caching,
          managedDisk: { storageAccountType: disk?.sku ?? 'Premium_LRS', id: disk?.id ?? dataDisk.diskId },
          deleteOption: 'Detach',
          diskSizeGB: disk?.sizeGb ?? 0,
          toBeDetached: false,
        };
      }),
    };
  }

  function vmJson(vm: FakeVm): unknown {
    return {
      id: vm.id,
      name: vm.name,
      type: 'Microsoft.Compute/virtualMachines',
      location: vm.location,
      ...(vm.zone ? { zones: [vm.zone] } : {}),
      properties: {
        vmId: vm.vmId,
        hardwareProfile: { vmSize: vm.vmSize },
        storageProfile: storageProfileJson(vm),
        provisioningState: vm.busyWith ? 'Updating' : 'Succeeded',
      },
    };
  }

  // --- Long-running operations ---

  /** Start an operation; answer 202 with the headers ARM sends. `resource` is the PUT's body, if any. */
  function accepted(
    base: string,
    family: Operation['family'],
    complete: () => Promise<void>,
    resource: string,
    extra: { body?: unknown; result?: () => unknown } = {},
  ): Reply {
    const id = randomUUID();
    const operation: Operation = {
      id,
      family,
      status: 'InProgress',
      pollsLeft: operationPolls,
      startTime: new Date().toISOString(),
      complete,
      resource: resource.toLowerCase(),
      ...(extra.result ? { result: extra.result } : {}),
    };
    operations.set(id, operation);
    const kind = family === 'disk' ? 'DiskOperations' : 'operations';
    const apiVersion = family === 'disk' ? '2026-03-02' : '2026-04-01';
    const statusUrl = `${base}/subscriptions/${subscription}/providers/Microsoft.Compute/locations/${location}/${kind}/${id}?p=${randomUUID()}&api-version=${apiVersion}`;
    return {
      status: 202,
      ...(extra.body === undefined ? {} : { body: extra.body }),
      headers: {
        'Azure-AsyncOperation': statusUrl,
        Location: `${statusUrl}&monitor=true`,
      },
    };
  }

  async function finish(operation: Operation): Promise<void> {
    operation.completing ??= (async () => {
      try {
        await operation.complete();
        operation.status = 'Succeeded';
      } catch (error) {
        operation.status = 'Failed';
        operation.error =
          error instanceof ArmError
            ? { code: error.code, message: error.message }
            : {
                code: 'InternalExecutionError',
                message: `An internal execution error occurred. ${(error as Error).message}`,
              };
      }
      operation.endTime = new Date().toISOString();
    })();
    await operation.completing;
  }

  /** One step of an operation: what a poll of its status (or a read of its resource) does. */
  async function advance(operation: Operation): Promise<void> {
    if (operation.status !== 'InProgress') return;
    if (operation.pollsLeft > 0) operation.pollsLeft -= 1;
    else await finish(operation);
  }

  /** Reading a resource moves its pending operations on (a client may poll the resource itself). */
  async function advanceOn(resource: string): Promise<void> {
    for (const operation of operations.values()) {
      if (operation.resource === resource.toLowerCase()) await advance(operation);
    }
  }

  /** Complete every pending operation (a client that stopped polling must not leave them pending). */
  async function settleAll(): Promise<void> {
    for (const operation of operations.values())
      if (operation.status === 'InProgress') await finish(operation);
  }

  async function pollOperation(id: string, monitor: boolean): Promise<Reply> {
    const operation = operations.get(id);
    if (!operation) {
      throw new ArmError(404, 'NotFound', `The operation '${id}' was not found.`);
    }
    await advance(operation);
    if (monitor) {
      // The Location URL: 202 while running, then the result (or 200 with no body), as CRP answers.
      if (operation.status === 'InProgress') return { status: 202 };
      if (operation.status === 'Failed') {
        throw new ArmError(409, operation.error!.code, operation.error!.message);
      }
      return operation.result ? { status: 200, body: operation.result() } : { status: 200 };
    }
    return {
      status: 200,
      body: {
        name: operation.id,
        status: operation.status,
        startTime: operation.startTime,
        ...(operation.endTime ? { endTime: operation.endTime } : {}),
        ...(operation.error ? { error: operation.error } : {}),
      },
    };
  }

  // --- Validation ---

  function asObject(value: unknown, what: string): Record<string, unknown> {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new ArmError(
        400,
        'InvalidRequestContent',
        `The request content was invalid: ${what} must be an object.`,
      );
    }
    return value as Record<string, unknown>;
  }

  function checkName(name: string, type: string): void {
    if (!/^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$/.test(name)) {
      throw new ArmError(
        400,
        'InvalidResourceName',
        `Resource name ${name} is invalid. The name can be up to 80 characters long. It must begin with a word character, and it must end with a word character or with '_'. The name may contain word characters or '.', '-', '_'. (${type})`,
      );
    }
  }

  function checkTags(tags: unknown): Record<string, string> {
    if (tags === undefined) return {};
    const object = asObject(tags, 'tags');
    const entries = Object.entries(object);
    if (entries.length > 50) {
      throw new ArmError(400, 'InvalidTag', 'The resource has more than 50 tags.');
    }
    for (const [name, value] of entries) {
      if (name.length > 512 || /[<>%&\\?/]/.test(name)) {
        throw new ArmError(
          400,
          'InvalidTagNameCharacters',
          `The tag names '${name}' have reserved characters '<,>,%,&,\\,?,/' or control characters.`,
        );
      }
      if (typeof value !== 'string' || value.length > 256) {
        throw new ArmError(
          400,
          'InvalidTag',
          `The tag '${name}' has a value that is not a string of at most 256 characters.`,
        );
      }
    }
    return object as Record<string, string>;
  }

  function checkLocation(body: Record<string, unknown>): string {
    const value = body.location;
    if (typeof value !== 'string' || value === '') {
      throw new ArmError(400, 'LocationRequired', 'The location property is required for this definition.');
    }
    if (value.replace(/\s/g, '').toLowerCase() !== location) {
      throw new ArmError(
        400,
        'InvalidParameter',
        `The resource location '${value}' does not match the source's location '${location}'.`,
      );
    }
    return location;
  }

  /** The source of a `Copy`: a disk or a snapshot, by (case-insensitive) resource id. */
  function copySource(
    creationData: Record<string, unknown>,
  ): FakeDisk | (FakeSnapshot & { readsLeft: number }) {
    if (creationData.createOption !== 'Copy') {
      throw new ArmError(
        400,
        'InvalidParameter',
        `Only createOption 'Copy' is supported by this fake; got '${String(creationData.createOption)}'.`,
      );
    }
    const source = creationData.sourceResourceId;
    if (typeof source !== 'string' || source === '') {
      throw new ArmError(400, 'InvalidParameter', "Required parameter 'sourceResourceId' is missing (null).");
    }
    const normalized = key(source.startsWith('/') ? source : `/${source}`);
    const found = disks.get(normalized) ?? snapshots.get(normalized);
    if (!found) {
      throw new ArmError(404, 'NotFound', `Resource ${source} is not found.`);
    }
    return found;
  }

  // --- Handlers ---

  async function putSnapshot([, rg, name]: string[], body: unknown, base: string): Promise<Reply> {
    requireGroup(rg!);
    checkName(name!, 'Microsoft.Compute/snapshots');
    const request = asObject(body, 'the snapshot');
    const id = resourceId(rg!, 'snapshots', name!);
    const existing = snapshots.get(key(id));
    const tags = checkTags(request.tags);
    if (existing) {
      existing.tags = tags;
      return { status: 200, body: snapshotJson(existing) };
    }
    const snapshotLocation = checkLocation(request);
    // Flattened models: a body without `properties` means the SDK dropped them (DESIGN.md §3).
    const properties = asObject(request.properties, 'properties');
    const creationData = asObject(properties.creationData, 'properties.creationData');
    const source = copySource(creationData);
    const incremental = properties.incremental === true;
    const sku = request.sku === undefined ? undefined : asObject(request.sku, 'sku').name;
    if (sku !== undefined && !snapshotSkus.includes(String(sku))) {
      throw new ArmError(400, 'InvalidParameter', `The value '${String(sku)}' of sku.name is not valid.`);
    }
    if ('incremental' in source && source.provisioningState !== 'Succeeded') {
      throw new ArmError(409, 'OperationNotAllowed', `The source snapshot ${source.name} is not ready.`);
    }
    const snapshot: FakeSnapshot & { readsLeft: number } = {
      id,
      name: name!,
      resourceGroup: rg!,
      location: snapshotLocation,
      sku: String(sku ?? 'Standard_LRS'),
      tags,
      sizeGb: source.sizeGb,
      incremental,
      creationData: { createOption: 'Copy', sourceResourceId: source.id, sourceUniqueId: source.uniqueId },
      provisioningState: 'Updating',
      ...(incremental ? { completionPercent: 0 } : {}),
      uniqueId: randomUUID(),
      timeCreated: new Date().toISOString(),
      readsLeft: completionPolls,
    };
    snapshots.set(key(id), snapshot);
    let hookError: unknown;
    // The point in time: the moment the request is accepted.
    await hooks.snapshotCreated?.(snapshot, source).catch((error: unknown) => {
      hookError = error;
    });
    return accepted(
      base,
      'disk',
      async () => {
        if (hookError) {
          snapshot.provisioningState = 'Failed';
          throw hookError;
        }
        snapshot.provisioningState = 'Succeeded';
      },
      snapshot.id,
      { body: snapshotJson(snapshot) },
    );
  }

  async function getSnapshot([, rg, name]: string[]): Promise<Reply> {
    await advanceOn(resourceId(rg!, 'snapshots', name!));
    const snapshot = findSnapshot(rg!, name!);
    if (snapshot.provisioningState === 'Succeeded' && snapshot.completionPercent !== undefined) {
      if (snapshot.readsLeft > 0) {
        snapshot.readsLeft -= 1;
        snapshot.completionPercent = Math.floor(
          (100 * (completionPolls - snapshot.readsLeft)) / (completionPolls + 1),
        );
      } else snapshot.completionPercent = 100;
    }
    return { status: 200, body: snapshotJson(snapshot) };
  }

  async function patchSnapshot([, rg, name]: string[], body: unknown, base: string): Promise<Reply> {
    const snapshot = findSnapshot(rg!, name!);
    const request = asObject(body, 'the snapshot update');
    const tags = request.tags === undefined ? undefined : checkTags(request.tags);
    return accepted(
      base,
      'disk',
      async () => {
        if (!snapshots.has(key(snapshot.id))) throw notFound('snapshots', rg!, name!);
        if (tags) snapshot.tags = tags;
      },
      snapshot.id,
      { result: () => snapshotJson(snapshot) },
    );
  }

  async function deleteSnapshot([, rg, name]: string[], _body: unknown, base: string): Promise<Reply> {
    requireGroup(rg!);
    const snapshot = snapshots.get(key(resourceId(rg!, 'snapshots', name!)));
    if (!snapshot) return { status: 204 };
    const dependents = [...disks.values()].filter(
      (disk) =>
        key(String(disk.creationData.sourceResourceId)) === key(snapshot.id) &&
        disk.provisioningState === 'Updating',
    );
    if (dependents.length > 0) {
      throw new ArmError(
        409,
        'OperationNotAllowed',
        `Snapshot ${snapshot.name} is being used to create disk ${dependents[0]!.name}; retry after it is created.`,
      );
    }
    return accepted(
      base,
      'disk',
      async () => {
        if (!snapshots.delete(key(snapshot.id))) return;
        await hooks.snapshotDeleted?.(snapshot);
      },
      snapshot.id,
    );
  }

  async function putDisk([, rg, name]: string[], body: unknown, base: string): Promise<Reply> {
    requireGroup(rg!);
    checkName(name!, 'Microsoft.Compute/disks');
    const request = asObject(body, 'the disk');
    const id = resourceId(rg!, 'disks', name!);
    const existing = disks.get(key(id));
    const tags = checkTags(request.tags);
    if (existing) {
      existing.tags = tags;
      return { status: 200, body: diskJson(existing) };
    }
    const diskLocation = checkLocation(request);
    const properties = asObject(request.properties, 'properties');
    const creationData = asObject(properties.creationData, 'properties.creationData');
    const source = copySource(creationData);
    const sku = request.sku === undefined ? 'Premium_LRS' : String(asObject(request.sku, 'sku').name);
    if (!diskSkus.includes(sku)) {
      throw new ArmError(400, 'InvalidParameter', `The value '${sku}' of sku.name is not valid.`);
    }
    if ('incremental' in source) {
      if (source.provisioningState !== 'Succeeded' || (source.completionPercent ?? 100) < 100) {
        throw new ArmError(
          409,
          'OperationNotAllowed',
          `Unable to create disk ${name} from snapshot ${source.name}: the background copy of the snapshot is ${source.completionPercent ?? 0}% complete; retry after it completes.`,
        );
      }
    }
    const zones = request.zones;
    if (zones !== undefined && (!Array.isArray(zones) || zones.some((zone) => typeof zone !== 'string'))) {
      throw new ArmError(400, 'InvalidParameter', 'zones must be a list of strings.');
    }
    const sizeGb = typeof properties.diskSizeGB === 'number' ? properties.diskSizeGB : source.sizeGb;
    if (sizeGb < source.sizeGb) {
      throw new ArmError(
        400,
        'BadRequest',
        `The disk size ${sizeGb} GB is smaller than the source's ${source.sizeGb} GB.`,
      );
    }
    const disk: FakeDisk = {
      id,
      name: name!,
      resourceGroup: rg!,
      location: diskLocation,
      ...(zones ? { zones: zones as string[] } : {}),
      sku,
      tags,
      sizeGb,
      creationData: { createOption: 'Copy', sourceResourceId: source.id, sourceUniqueId: source.uniqueId },
      provisioningState: 'Updating',
      uniqueId: randomUUID(),
      timeCreated: new Date().toISOString(),
    };
    disks.set(key(id), disk);
    return accepted(
      base,
      'disk',
      async () => {
        try {
          if ('incremental' in source) await hooks.diskCreated?.(disk, source);
          disk.provisioningState = 'Succeeded';
        } catch (error) {
          disk.provisioningState = 'Failed';
          throw error;
        }
      },
      disk.id,
      { body: diskJson(disk) },
    );
  }

  async function deleteDisk([, rg, name]: string[], _body: unknown, base: string): Promise<Reply> {
    requireGroup(rg!);
    const disk = disks.get(key(resourceId(rg!, 'disks', name!)));
    if (!disk) return { status: 204 };
    if (disk.managedBy) {
      throw new ArmError(
        409,
        'OperationNotAllowed',
        `Disk ${disk.name} is attached to VM ${disk.managedBy}.`,
      );
    }
    return accepted(
      base,
      'disk',
      async () => {
        if (!disks.delete(key(disk.id))) return;
        await hooks.diskDeleted?.(disk);
      },
      disk.id,
    );
  }

  async function attachDetach([, rg, name]: string[], body: unknown, base: string): Promise<Reply> {
    const vm = findVm(rg!, name!);
    const request = asObject(body, 'the request');
    const toAttach = (request.dataDisksToAttach ?? []) as Array<Record<string, unknown>>;
    const toDetach = (request.dataDisksToDetach ?? []) as Array<Record<string, unknown>>;
    if (!Array.isArray(toAttach) || !Array.isArray(toDetach) || toAttach.length + toDetach.length === 0) {
      throw new ArmError(
        400,
        'InvalidParameter',
        'At least one of dataDisksToAttach or dataDisksToDetach must be a non-empty list.',
      );
    }
    if (vm.busyCount > 0 || vm.busyWith) {
      if (vm.busyCount > 0) vm.busyCount -= 1;
      throw new ArmError(
        409,
        'OperationNotAllowed',
        `Operation 'attachDetachDataDisks' is not allowed on VM '${vm.name}' since the VM is marked for an operation in progress: another operation is running on it. Retry later.`,
      );
    }
    const attach: Array<{ disk: FakeDisk; lun: number; caching: string }> = [];
    const usedLuns = new Set(vm.dataDisks.map((dataDisk) => dataDisk.lun));
    for (const item of toAttach) {
      const diskId = String(item.diskId ?? '');
      const disk = disks.get(key(diskId));
      if (!disk) throw new ArmError(404, 'NotFound', `Disk ${diskId} is not found.`);
      if (disk.provisioningState !== 'Succeeded') {
        throw new ArmError(409, 'OperationNotAllowed', `Disk ${disk.name} is still being created.`);
      }
      if (disk.managedBy) {
        throw new ArmError(409, 'Conflict', `Disk ${disk.name} is already attached to VM ${disk.managedBy}.`);
      }
      if ((disk.zones?.[0] ?? '') !== (vm.zone ?? '')) {
        throw new ArmError(
          400,
          'BadRequest',
          `Disk ${disk.name} in zone '${disk.zones?.[0] ?? ''}' cannot be attached to VM ${vm.name} in zone '${vm.zone ?? ''}'.`,
        );
      }
      const lun = item.lun;
      if (typeof lun !== 'number' || !Number.isInteger(lun) || lun < 0 || lun > 63) {
        throw new ArmError(400, 'InvalidParameter', `The value of parameter lun is invalid: ${String(lun)}.`);
      }
      if (usedLuns.has(lun)) {
        throw new ArmError(
          409,
          'Conflict',
          `A disk at LUN ${lun} already exists on VM ${vm.name}; choose another LUN.`,
        );
      }
      const caching = String(item.caching ?? 'None');
      if (!cachingTypes.includes(caching)) {
        throw new ArmError(400, 'InvalidParameter', `The value '${caching}' of caching is not valid.`);
      }
      usedLuns.add(lun);
      attach.push({ disk, lun, caching });
    }
    const detach: FakeDataDisk[] = [];
    for (const item of toDetach) {
      const diskId = String(item.diskId ?? '');
      const dataDisk = vm.dataDisks.find((entry) => key(entry.diskId) === key(diskId));
      if (!dataDisk) {
        throw new ArmError(400, 'InvalidParameter', `Disk ${diskId} is not attached to VM ${vm.name}.`);
      }
      detach.push(dataDisk);
    }
    for (const { disk } of attach) disk.managedBy = vm.id;
    const reply = accepted(
      base,
      'vm',
      async () => {
        try {
          for (const dataDisk of detach) {
            vm.dataDisks = vm.dataDisks.filter((entry) => entry !== dataDisk);
            const disk = disks.get(key(dataDisk.diskId));
            if (disk) {
              disk.managedBy = undefined;
              await hooks.diskDetached?.(vm, disk, dataDisk.lun);
            }
          }
          for (const { disk, lun, caching } of attach) {
            vm.dataDisks.push({ lun, diskId: disk.id, caching });
            await hooks.diskAttached?.(vm, disk, lun);
          }
        } finally {
          vm.busyWith = undefined;
        }
      },
      vm.id,
      { result: () => storageProfileJson(vm) },
    );
    vm.busyWith = reply.headers!['Azure-AsyncOperation'];
    return reply;
  }

  function list<T>(
    items: T[],
    toJson: (item: T) => unknown,
    query: URLSearchParams,
    base: string,
    path: string,
  ): Reply {
    const skip = Number(query.get('$skiptoken') ?? '0');
    const page = items.slice(skip, skip + pageSize);
    const next = skip + pageSize < items.length;
    return {
      status: 200,
      body: {
        value: page.map(toJson),
        ...(next
          ? {
              nextLink: `${base}${path}?api-version=${query.get('api-version')}&$skiptoken=${skip + pageSize}`,
            }
          : {}),
      },
    };
  }

  const routes: Route[] = [
    {
      // The caller's effective permissions at a scope: everything but the denied actions.
      pattern:
        /^\/subscriptions\/([^/]+)\/resourcegroups\/([^/]+)\/providers\/microsoft\.authorization\/permissions$/i,
      methods: {
        GET: {
          action: 'Microsoft.Authorization/permissions/read',
          handler: async (m) => {
            requireGroup(m.params[1]!);
            const notActions = [...denied.entries()]
              .filter(([, times]) => times > 0)
              .map(([action]) => action);
            return {
              status: 200,
              body: { value: [{ actions: ['*'], notActions, dataActions: [], notDataActions: [] }] },
            };
          },
        },
      },
    },
    {
      pattern: new RegExp(`^${computePrefix}/snapshots/([^/]+)$`, 'i'),
      methods: {
        PUT: {
          action: 'Microsoft.Compute/snapshots/write',
          handler: (m) => putSnapshot(m.params, m.body, m.base),
        },
        GET: { action: 'Microsoft.Compute/snapshots/read', handler: (m) => getSnapshot(m.params) },
        PATCH: {
          action: 'Microsoft.Compute/snapshots/write',
          handler: (m) => patchSnapshot(m.params, m.body, m.base),
        },
        DELETE: {
          action: 'Microsoft.Compute/snapshots/delete',
          handler: (m) => deleteSnapshot(m.params, m.body, m.base),
        },
      },
    },
    {
      pattern: new RegExp(`^${computePrefix}/snapshots$`, 'i'),
      methods: {
        GET: {
          action: 'Microsoft.Compute/snapshots/read',
          handler: async (m) => {
            requireGroup(m.params[1]!);
            const items = [...snapshots.values()].filter(
              (snapshot) => snapshot.resourceGroup.toLowerCase() === m.params[1]!.toLowerCase(),
            );
            return list(items, snapshotJson, m.query, m.base, m.path);
          },
        },
      },
    },
    {
      pattern: new RegExp(`^${computePrefix}/disks/([^/]+)$`, 'i'),
      methods: {
        PUT: { action: 'Microsoft.Compute/disks/write', handler: (m) => putDisk(m.params, m.body, m.base) },
        GET: {
          action: 'Microsoft.Compute/disks/read',
          handler: async (m) => {
            await advanceOn(resourceId(m.params[1]!, 'disks', m.params[2]!));
            return { status: 200, body: diskJson(findDisk(m.params[1]!, m.params[2]!)) };
          },
        },
        DELETE: {
          action: 'Microsoft.Compute/disks/delete',
          handler: (m) => deleteDisk(m.params, m.body, m.base),
        },
      },
    },
    {
      pattern: new RegExp(`^${computePrefix}/disks$`, 'i'),
      methods: {
        GET: {
          action: 'Microsoft.Compute/disks/read',
          handler: async (m) => {
            requireGroup(m.params[1]!);
            const items = [...disks.values()].filter(
              (disk) => disk.resourceGroup.toLowerCase() === m.params[1]!.toLowerCase(),
            );
            return list(items, diskJson, m.query, m.base, m.path);
          },
        },
      },
    },
    {
      pattern: new RegExp(`^${computePrefix}/virtualmachines/([^/]+)$`, 'i'),
      methods: {
        GET: {
          action: 'Microsoft.Compute/virtualMachines/read',
          handler: async (m) => {
            await advanceOn(resourceId(m.params[1]!, 'virtualMachines', m.params[2]!));
            return { status: 200, body: vmJson(findVm(m.params[1]!, m.params[2]!)) };
          },
        },
      },
    },
    {
      pattern: new RegExp(`^${computePrefix}/virtualmachines/([^/]+)/attachDetachDataDisks$`, 'i'),
      methods: {
        POST: {
          action: 'Microsoft.Compute/virtualMachines/attachDetachDataDisks/action',
          handler: (m) => attachDetach(m.params, m.body, m.base),
        },
      },
    },
    {
      pattern:
        /^\/subscriptions\/([^/]+)\/providers\/microsoft\.compute\/locations\/([^/]+)\/(diskoperations|operations)\/([^/]+)$/i,
      methods: {
        GET: {
          action: 'Microsoft.Compute/locations/operations/read',
          handler: (m) => pollOperation(m.params[3]!, m.query.get('monitor') === 'true'),
        },
      },
    },
  ];

  function actionOf(route: Route, method: string, params: string[]): string {
    const action = route.methods[method]!.action;
    // Disk operations have their own RBAC action (Microsoft.Compute/locations/DiskOperations/read).
    if (
      action === 'Microsoft.Compute/locations/operations/read' &&
      params[2]!.toLowerCase() === 'diskoperations'
    ) {
      return 'Microsoft.Compute/locations/DiskOperations/read';
    }
    return action;
  }

  function apiVersionFamily(path: string): keyof typeof armApiVersions {
    if (/\/providers\/microsoft\.authorization\//i.test(path)) return 'authorization';
    return /\/(virtualmachines|locations\/[^/]+\/operations)\b/i.test(path) ? 'virtualMachines' : 'disks';
  }

  async function answer(
    request: IncomingMessage,
    raw: string,
  ): Promise<{ reply: Reply; action: string; body?: unknown }> {
    // Operation URLs point back at whoever the client talks to (a proxy in front of the fake says so).
    const host = header(request.headers['x-forwarded-host']) ?? request.headers.host ?? '127.0.0.1';
    const scheme = header(request.headers['x-forwarded-proto']) ?? (options.tls ? 'https' : 'http');
    const base = `${scheme}://${host}`;
    const url = new URL(request.url ?? '/', base);
    const method = (request.method ?? 'GET').toUpperCase();
    let action = 'unknown';
    let body: unknown;
    try {
      const matched = routes
        .map((route) => ({ route, match: route.pattern.exec(url.pathname) }))
        .find((candidate) => candidate.match);
      if (!matched?.match) {
        throw new ArmError(
          404,
          'InvalidResourceType',
          `The resource type could not be found for path '${url.pathname}'.`,
        );
      }
      const { route, match } = matched;
      if (!route.methods[method]) {
        throw new ArmError(
          405,
          'MethodNotAllowed',
          `The method '${method}' is not allowed for '${url.pathname}'.`,
        );
      }
      const params = match.slice(1).map((part) => decodeURIComponent(part));
      action = actionOf(route, method, params);
      const token = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
      if (!token) {
        throw new ArmError(
          401,
          'AuthenticationFailed',
          "Authentication failed. The 'Authorization' header is missing.",
        );
      }
      if (!tokens.has(token)) {
        throw new ArmError(401, 'InvalidAuthenticationToken', 'The access token is invalid.');
      }
      if (params[0]!.toLowerCase() !== subscription) {
        throw new ArmError(
          404,
          'SubscriptionNotFound',
          `The subscription '${params[0]}' could not be found.`,
        );
      }
      const apiVersion = url.searchParams.get('api-version');
      const family = apiVersionFamily(url.pathname);
      if (!apiVersion) {
        throw new ArmError(
          400,
          'MissingApiVersionParameter',
          'The api-version query parameter (?api-version=) is required for all requests.',
        );
      }
      if (!(armApiVersions[family] as readonly string[]).includes(apiVersion)) {
        throw new ArmError(
          400,
          'NoRegisteredProviderFound',
          `No registered resource provider found for location '${location}' and API version '${apiVersion}'. The supported api-versions are '${armApiVersions[family].join(', ')}'.`,
        );
      }
      const refusals = denied.get(action) ?? 0;
      if (refusals > 0) {
        denied.set(action, refusals - 1);
        const scope = url.pathname;
        throw new ArmError(
          403,
          'AuthorizationFailed',
          `The client '00000000-0000-4000-8000-00000000c11e' with object id '00000000-0000-4000-8000-00000000c11e' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
        );
      }
      const fault = takeFault(method, action);
      if (fault) {
        throw new ArmError(
          fault.status,
          fault.code,
          fault.message ?? `Injected fault ${fault.code} on ${method} ${url.pathname}.`,
          fault.retryAfter,
        );
      }
      if (raw !== '') {
        try {
          body = JSON.parse(raw);
        } catch {
          throw new ArmError(
            400,
            'InvalidRequestContent',
            'The request content was invalid and could not be deserialized.',
          );
        }
      }
      // ARM works on without being polled: an operation nobody follows (its client died or gave
      // up) completes after `operationMaxMs`.
      await settleOverdue();
      const reply = await route.methods[method]!.handler({
        params,
        path: url.pathname,
        body,
        query: url.searchParams,
        base,
      });
      return { reply, action, body };
    } catch (error) {
      if (!(error instanceof ArmError)) throw error;
      return {
        action,
        body,
        reply: {
          status: error.status,
          body: { error: { code: error.code, message: error.message } },
          headers: error.retryAfter === undefined ? {} : { 'Retry-After': String(error.retryAfter) },
        },
      };
    }
  }

  async function settleOverdue(): Promise<void> {
    const now = Date.now();
    for (const operation of operations.values()) {
      if (operation.status === 'InProgress' && now - Date.parse(operation.startTime) > operationMaxMs) {
        await finish(operation);
      }
    }
  }

  function takeFault(method: string, action: string): ArmFault | undefined {
    for (const fault of faults) {
      if (fault.method && fault.method.toUpperCase() !== method) continue;
      if (fault.action && fault.action !== action) continue;
      fault.seen += 1;
      if (fault.seen <= (fault.after ?? 0)) continue;
      if (fault.failed >= (fault.times ?? 1)) continue;
      fault.failed += 1;
      return fault;
    }
    return undefined;
  }

  const handler = (request: IncomingMessage, response: ServerResponse): void => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      answer(request, raw)
        .then(({ reply, action, body }) => {
          const url = new URL(request.url ?? '/', 'https://fake');
          requests.push({
            method: request.method ?? 'GET',
            path: url.pathname,
            apiVersion: url.searchParams.get('api-version') ?? undefined,
            action,
            status: reply.status,
            ...(body === undefined ? {} : { body }),
            ...(reply.status >= 400
              ? { errorCode: (reply.body as { error: { code: string } }).error.code }
              : {}),
          });
          send(response, reply);
        })
        .catch((error: unknown) => {
          send(response, {
            status: 500,
            body: { error: { code: 'InternalServerError', message: String(error) } },
          });
        });
    });
  };
  const server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler)
    : createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    subscription,
    location,
    acceptToken: (token) => {
      tokens.add(token);
    },
    addResourceGroup: (name) => {
      groups.add(name.toLowerCase());
    },
    addVm: ({ resourceGroup, name, zone, vmSize }) => {
      groups.add(resourceGroup.toLowerCase());
      const vm = {
        id: resourceId(resourceGroup, 'virtualMachines', name),
        name,
        resourceGroup,
        location,
        ...(zone ? { zone } : {}),
        vmId: randomUUID(),
        vmSize: vmSize ?? 'Standard_D4s_v5',
        dataDisks: [],
        busyCount: 0,
      };
      vms.set(key(vm.id), vm);
      return vm;
    },
    addDisk: ({ resourceGroup, name, sizeGb, sku, zone, tags }) => {
      groups.add(resourceGroup.toLowerCase());
      const disk: FakeDisk = {
        id: resourceId(resourceGroup, 'disks', name),
        name,
        resourceGroup,
        location,
        ...(zone ? { zones: [zone] } : {}),
        sku: sku ?? 'Premium_LRS',
        tags: tags ?? {},
        sizeGb,
        creationData: { createOption: 'Empty' },
        provisioningState: 'Succeeded',
        uniqueId: randomUUID(),
        timeCreated: new Date().toISOString(),
      };
      disks.set(key(disk.id), disk);
      return disk;
    },
    attach: async (vmName, diskId, lun) => {
      const vm = [...vms.values()].find((candidate) => candidate.name === vmName);
      const disk = disks.get(key(diskId));
      if (!vm || !disk) throw new Error(`attach: unknown VM ${vmName} or disk ${diskId}`);
      vm.dataDisks.push({ lun, diskId: disk.id, caching: 'ReadOnly' });
      disk.managedBy = vm.id;
      await hooks.diskAttached?.(vm, disk, lun);
    },
    deny: (action, times = Number.POSITIVE_INFINITY) => {
      denied.set(action, times);
    },
    allow: (action) => {
      denied.delete(action);
    },
    inject: (fault) => {
      faults.push({ ...fault, seen: 0, failed: 0 });
    },
    clearFaults: () => {
      faults = [];
    },
    busyVm: (vmName, count) => {
      const vm = [...vms.values()].find((candidate) => candidate.name === vmName);
      if (!vm) throw new Error(`busyVm: unknown VM ${vmName}`);
      vm.busyCount = count;
    },
    vm: (name) => {
      const vm = [...vms.values()].find((candidate) => candidate.name === name);
      if (!vm) throw new Error(`vm: unknown VM ${name}`);
      return vm;
    },
    disks: () => [...disks.values()],
    snapshots: () => [...snapshots.values()],
    requests,
    close: async () => {
      await settleAll().catch(() => undefined);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function send(response: ServerResponse, reply: Reply): void {
  const headers: Record<string, string> = {
    'x-ms-request-id': randomUUID(),
    ...(reply.headers ?? {}),
  };
  if (reply.body === undefined) {
    response.writeHead(reply.status, headers);
    response.end();
    return;
  }
  const text = JSON.stringify(reply.body);
  response.writeHead(reply.status, {
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(text)),
  });
  response.end(text);
}
