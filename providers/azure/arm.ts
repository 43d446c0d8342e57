/**
 * The narrow seam between the provider and `@azure/arm-compute`: the few ARM calls it makes, each
 * translated by `armCall` (errors) and waiting for its long-running operation where it has one. The
 * SDK and `@azure/identity` are imported on first use only, so that loading the provider (and
 * `dssnap --help`) never pays for them (DESIGN.md §5).
 */
import { type Agent, request as httpsRequest } from 'node:https';
import type {
  Snapshot as ArmSnapshot,
  ComputeManagementClient,
  Disk,
  StorageProfile,
  VirtualMachine,
} from '@azure/arm-compute';
import type { TokenCredential } from '@azure/identity';
import { armCall } from './errors.js';

export type { ArmSnapshot, Disk, VirtualMachine };

export interface ArmClientOptions {
  endpoint: string;
  /** Token audience, e.g. https://management.azure.com/.default. */
  scope: string;
  subscription: string;
  /** Default: `DefaultAzureCredential` (environment, workload identity, managed identity, Azure CLI…). */
  credential?: TokenCredential;
  managedIdentityClientId?: string;
  /** For tests: trust a self-signed certificate. */
  agent?: Agent;
  pollIntervalMs: number;
  requestRetries: number;
  requestRetryDelayMs: number;
  signal?: AbortSignal;
}

export interface ArmClient {
  getSnapshot(resourceGroup: string, name: string): Promise<ArmSnapshot>;
  /** PUT and wait for the operation: returns when Azure reports the snapshot created. */
  createSnapshot(resourceGroup: string, name: string, snapshot: ArmSnapshot): Promise<ArmSnapshot>;
  /** Replace the snapshot's tags (PATCH) and wait. */
  setSnapshotTags(resourceGroup: string, name: string, tags: Record<string, string>): Promise<ArmSnapshot>;
  /** DELETE and wait; a snapshot already gone is success (ARM answers 204). */
  deleteSnapshot(resourceGroup: string, name: string): Promise<void>;
  listSnapshots(resourceGroup: string): Promise<ArmSnapshot[]>;
  getDisk(resourceGroup: string, name: string): Promise<Disk>;
  createDisk(resourceGroup: string, name: string, disk: Disk): Promise<Disk>;
  deleteDisk(resourceGroup: string, name: string): Promise<void>;
  listDisks(resourceGroup: string): Promise<Disk[]>;
  getVm(resourceGroup: string, name: string): Promise<VirtualMachine>;
  /** Attach `diskId` at `lun` and wait until the VM has it. */
  attachDisk(
    resourceGroup: string,
    vmName: string,
    disk: { diskId: string; lun: number; caching: 'None' | 'ReadOnly' },
  ): Promise<StorageProfile>;
  /** Detach `diskId` and wait until the VM no longer has it. */
  detachDisk(resourceGroup: string, vmName: string, diskId: string): Promise<StorageProfile>;
  /** Get a token from the credential (for `doctor`). Throws what the credential chain reports. */
  checkCredential(): Promise<void>;
  /** The caller's effective permissions at the scope of `resourceGroup` (Microsoft.Authorization). */
  permissionsAt(resourceGroup: string): Promise<RolePermissions[]>;
}

/** One entry of the Microsoft.Authorization permissions list. */
export interface RolePermissions {
  actions: string[];
  notActions: string[];
}

/** Build the client (imports the SDKs). Changes nothing; makes no request. */
export async function createArmClient(options: ArmClientOptions): Promise<ArmClient> {
  const { ComputeManagementClient: Client } = await import('@azure/arm-compute');
  const credential = options.credential ?? (await defaultCredential(options.managedIdentityClientId));
  const client: ComputeManagementClient = new Client(credential, options.subscription, {
    endpoint: options.endpoint,
    credentials: { scopes: [options.scope] },
    retryOptions: {
      maxRetries: options.requestRetries,
      retryDelayInMs: options.requestRetryDelayMs,
      maxRetryDelayInMs: Math.max(options.requestRetryDelayMs * 16, 30_000),
    },
    ...(options.agent ? { agent: options.agent } : {}),
    userAgentOptions: { userAgentPrefix: 'dssnap' },
  });
  const lro = {
    updateIntervalInMs: options.pollIntervalMs,
    ...(options.signal ? { abortSignal: options.signal } : {}),
  };
  // A snapshot is created while the filesystems are frozen: poll its operation often to thaw soon.
  const frozenLro = { ...lro, updateIntervalInMs: Math.min(options.pollIntervalMs, 250) };
  const plain = options.signal ? { abortSignal: options.signal } : {};

  return {
    getSnapshot: (rg, name) => armCall(`read snapshot ${name}`, () => client.snapshots.get(rg, name, plain)),
    createSnapshot: (rg, name, snapshot) =>
      armCall(
        `create snapshot ${name}`,
        async () => await client.snapshots.createOrUpdate(rg, name, snapshot, frozenLro),
      ),
    setSnapshotTags: (rg, name, tags) =>
      armCall(`tag snapshot ${name}`, async () => await client.snapshots.update(rg, name, { tags }, lro)),
    deleteSnapshot: (rg, name) =>
      armCall(`delete snapshot ${name}`, async () => {
        await client.snapshots.delete(rg, name, lro);
      }),
    listSnapshots: (rg) =>
      armCall(`list the snapshots of resource group ${rg}`, () =>
        collect(client.snapshots.listByResourceGroup(rg, plain)),
      ),
    getDisk: (rg, name) => armCall(`read disk ${name}`, () => client.disks.get(rg, name, plain)),
    createDisk: (rg, name, disk) =>
      armCall(`create disk ${name}`, async () => await client.disks.createOrUpdate(rg, name, disk, lro)),
    deleteDisk: (rg, name) =>
      armCall(`delete disk ${name}`, async () => {
        await client.disks.delete(rg, name, lro);
      }),
    listDisks: (rg) =>
      armCall(`list the disks of resource group ${rg}`, () =>
        collect(client.disks.listByResourceGroup(rg, plain)),
      ),
    getVm: (rg, name) =>
      armCall(`read virtual machine ${name}`, () => client.virtualMachines.get(rg, name, plain)),
    attachDisk: (rg, vmName, disk) =>
      armCall(
        `attach disk ${disk.diskId.split('/').pop()} to virtual machine ${vmName} at LUN ${disk.lun}`,
        async () =>
          await client.virtualMachines.attachDetachDataDisks(
            rg,
            vmName,
            {
              dataDisksToAttach: [
                { diskId: disk.diskId, lun: disk.lun, caching: disk.caching, deleteOption: 'Detach' },
              ],
            },
            lro,
          ),
      ),
    checkCredential: () =>
      armCall('get a token for Azure Resource Manager', async () => {
        await credential.getToken(options.scope);
      }),
    permissionsAt: (rg) =>
      armCall(`read the permissions of this identity on resource group ${rg}`, async () => {
        const { token } = (await credential.getToken(options.scope)) ?? { token: '' };
        const path = `/subscriptions/${options.subscription}/resourceGroups/${rg}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01`;
        const body = (await getJson(new URL(path, options.endpoint), token, options.agent)) as {
          value?: Array<Partial<RolePermissions>>;
        };
        return (body.value ?? []).map((entry) => ({
          actions: entry.actions ?? [],
          notActions: entry.notActions ?? [],
        }));
      }),
    detachDisk: (rg, vmName, diskId) =>
      armCall(
        `detach disk ${diskId.split('/').pop()} from virtual machine ${vmName}`,
        async () =>
          await client.virtualMachines.attachDetachDataDisks(
            rg,
            vmName,
            { dataDisksToDetach: [{ diskId }] },
            lro,
          ),
      ),
  };
}

/** GET a JSON document with a bearer token; a non-2xx answer throws a RestError-like error. */
function getJson(url: URL, token: string, agent: Agent | undefined): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      url,
      {
        method: 'GET',
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
        ...(agent ? { agent } : {}),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = text ? JSON.parse(text) : {};
          } catch {
            body = { error: { message: text.slice(0, 200) } };
          }
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            resolve(body);
            return;
          }
          const error = (body as { error?: { code?: string; message?: string } }).error ?? {};
          reject(
            Object.assign(new Error(error.message ?? `HTTP ${status}`), {
              name: 'RestError',
              statusCode: status,
              code: error.code,
            }),
          );
        });
      },
    );
    request.setTimeout(30_000, () => request.destroy(new Error('timed out after 30 s')));
    request.on('error', reject);
    request.end();
  });
}

async function defaultCredential(managedIdentityClientId: string | undefined): Promise<TokenCredential> {
  const { DefaultAzureCredential } = await import('@azure/identity');
  return new DefaultAzureCredential(managedIdentityClientId ? { managedIdentityClientId } : {});
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}
