/**
 * The Compute Engine clients: the real `@google-cloud/compute` SDK (REST transport), imported only
 * when the gcp provider first needs it (the SDK takes over a second to load; `dssnap --help` and the
 * other providers never pay for it). Credentials are Google's Application Default Credentials — the
 * VM's service account through the metadata server, or GOOGLE_APPLICATION_CREDENTIALS — never a
 * dssnap setting, never logged. The SDK retries nothing over REST: the core's `withRetries` does, from
 * `isGcpPermanent`; every call here turns SDK errors into a GcpApiError naming the call.
 */
import type {
  DisksClient,
  GlobalOperationsClient,
  InstancesClient,
  protos,
  SnapshotsClient,
  ZoneOperationsClient,
} from '@google-cloud/compute';
import { waitFor } from '../../src/provider/wait.js';
import { classifyGcpError, operationError, toGcpError } from './errors.js';
import type { ResolvedGcpSettings } from './schema.js';

export type GcpOperation = protos.google.cloud.compute.v1.IOperation;
export type GcpSnapshot = protos.google.cloud.compute.v1.ISnapshot;
export type GcpDisk = protos.google.cloud.compute.v1.IDisk;
export type GcpInstance = protos.google.cloud.compute.v1.IInstance;

export interface ComputeApi {
  disks: DisksClient;
  snapshots: SnapshotsClient;
  instances: InstancesClient;
  zoneOperations: ZoneOperationsClient;
  globalOperations: GlobalOperationsClient;
  /** Application Default Credentials, as the SDK resolved them (shared by every client). */
  auth: DisksClient['auth'];
  /** Per-call options (timeout) for every request. */
  callOptions: { timeout: number };
  /** Compute calls made so far, by method (`disks.createSnapshot`), retries included. */
  callCounts(): Record<string, number>;
  /** Run one SDK call: counted, and its error turned into a GcpApiError naming `method`. */
  call<T>(method: string, send: () => Promise<T>): Promise<T>;
}

export const cloudPlatformScope = 'https://www.googleapis.com/auth/cloud-platform';

/** Import the SDK and build the clients. Contacts nothing until a call is made. */
export async function createComputeApi(settings: ResolvedGcpSettings): Promise<ComputeApi> {
  const compute = await import('@google-cloud/compute');
  const base = { ...(settings.api ?? {}), fallback: true, scopes: [cloudPlatformScope] };
  // The first client resolves Application Default Credentials; the others share them.
  const disks = new compute.DisksClient(base);
  const auth = disks.auth;
  const options = { ...base, auth };
  const counts: Record<string, number> = {};
  return {
    disks,
    snapshots: new compute.SnapshotsClient(options),
    instances: new compute.InstancesClient(options),
    zoneOperations: new compute.ZoneOperationsClient(options),
    globalOperations: new compute.GlobalOperationsClient(options),
    auth,
    callOptions: { timeout: settings.requestTimeoutMs },
    callCounts: () => ({ ...counts }),
    async call(method, send) {
      counts[method] = (counts[method] ?? 0) + 1;
      try {
        return await send();
      } catch (error) {
        throw toGcpError(method, error);
      }
    },
  };
}

export interface OperationRef {
  project: string;
  /** Set for a zonal operation; a global one otherwise. */
  zone?: string;
  name: string;
}

export interface PollOptions {
  pollIntervalMs: number;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** The name to poll from what a mutating call returned (the SDK's `latestResponse.name`). */
export function operationName(returned: { latestResponse?: unknown; name?: string | null }): string {
  const latest = returned.latestResponse as GcpOperation | undefined;
  const name = latest?.name ?? undefined;
  if (!name) throw new Error('The Compute API returned no operation name');
  return name;
}

/**
 * Wait until the operation is DONE, with `zoneOperations.wait` / `globalOperations.wait` (each call
 * returns when the operation is done or a server-side deadline passes) driven by the core's waiting
 * helper. Returns the operation; throws a GcpApiError carrying its error messages when it failed. A
 * transient failure of a poll itself is waited through (polling is read-only).
 */
export async function awaitOperation(
  api: ComputeApi,
  ref: OperationRef,
  method: string,
  options: PollOptions,
): Promise<GcpOperation> {
  // A wait call may legitimately be held by the server for up to two minutes.
  const waitOptions = { timeout: Math.max(api.callOptions.timeout, 150_000) };
  return waitFor<GcpOperation>(
    async () => {
      let operation: GcpOperation;
      try {
        [operation] = ref.zone
          ? await api.call('zoneOperations.wait', () =>
              api.zoneOperations.wait(
                { project: ref.project, zone: ref.zone!, operation: ref.name },
                waitOptions,
              ),
            )
          : await api.call('globalOperations.wait', () =>
              api.globalOperations.wait({ project: ref.project, operation: ref.name }, waitOptions),
            );
      } catch (error) {
        const kind = classifyGcpError(error);
        if (kind === 'transient' || kind === 'throttling')
          return { done: false, observed: (error as Error).message };
        throw error;
      }
      if (operation.status !== 'DONE')
        return { done: false, observed: { status: operation.status, progress: operation.progress } };
      const errors = operation.error?.errors ?? [];
      if (errors.length > 0) throw operationError(method, errors, operation.httpErrorStatusCode);
      return { done: true, value: operation };
    },
    {
      description: `GCP operation ${ref.name} (${method}) to finish`,
      minDelayMs: options.pollIntervalMs,
      maxDelayMs: Math.max(options.pollIntervalMs, 10_000),
      deadlineMs: options.timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
    },
  );
}

/**
 * Send a call that carries a `requestId` until it is accepted, waiting through throttling and transient
 * errors: the same requestId makes a repeat return the first operation instead of a second resource, so
 * even an ambiguous failure (the answer lost after Google accepted the call) is safe to repeat.
 */
export function sendIdempotent<T>(
  send: () => Promise<T>,
  description: string,
  options: PollOptions,
): Promise<T> {
  return waitFor<T>(
    async () => {
      try {
        return { done: true, value: await send() };
      } catch (error) {
        const kind = classifyGcpError(error);
        if (kind === 'transient' || kind === 'throttling')
          return { done: false, observed: (error as Error).message };
        throw error;
      }
    },
    {
      description,
      minDelayMs: options.pollIntervalMs,
      maxDelayMs: Math.max(options.pollIntervalMs, 5_000),
      deadlineMs: options.timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
    },
  );
}

/** Every item of an SDK `listAsync` iterable (it follows `nextPageToken`). */
export async function collect<T>(
  api: ComputeApi,
  method: string,
  items: () => AsyncIterable<T>,
): Promise<T[]> {
  return api.call(method, async () => {
    const found: T[] = [];
    for await (const item of items()) found.push(item);
    return found;
  });
}
