/**
 * Guest side of `remote-provider.ts`: real providers built and called inside the VM, and the file
 * operations the contract suite needs there. Called through the agent (`vm.call`), one warm module.
 */
import { mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureUnmounted, mountReadOnly } from '../../src/host/mounts.js';
import { loadProvider } from '../../src/provider/registry.js';
import type { ProviderOptions, QuiesceMode, SnapshotProvider } from '../../src/provider/types.js';

const providers = new Map<number, SnapshotProvider>();
let nextHandle = 1;

/** What the host needs to mirror a provider: its constant properties and which optional methods it has. */
export interface ProviderFacts {
  handle: number;
  id: string;
  defaultQuiesce: QuiesceMode;
  supportedQuiesce: SnapshotProvider['supportedQuiesce'];
  permissions: SnapshotProvider['permissions'];
  optional: string[];
}

const optionalMethods = ['doctor', 'checkQuiesce', 'checkExposure'] as const;

/** Build provider `id` from the registry, as the core does, and keep it for `invokeProvider`. */
export async function createProvider(id: string, options: ProviderOptions): Promise<ProviderFacts> {
  const provider = await loadProvider(id, options);
  const handle = nextHandle++;
  providers.set(handle, provider);
  return {
    handle,
    id: provider.id,
    defaultQuiesce: provider.defaultQuiesce,
    supportedQuiesce: provider.supportedQuiesce,
    permissions: provider.permissions,
    optional: optionalMethods.filter((method) => typeof provider[method] === 'function'),
  };
}

/**
 * Call `method(...args)` of a provider built by `createProvider`. A thrown error carries the provider's
 * own verdicts as `flags.notFound` / `flags.permanent`, so that the host can answer isNotFound.
 */
export async function invokeProvider(handle: number, method: string, args: unknown[]): Promise<unknown> {
  const provider = providers.get(handle);
  if (!provider) throw new Error(`No provider with handle ${handle} in this VM`);
  const fn = (provider as unknown as Record<string, unknown>)[method];
  if (typeof fn !== 'function') throw new Error(`Provider ${provider.id} has no method ${method}`);
  try {
    return await (fn as (...values: unknown[]) => Promise<unknown>).apply(provider, args);
  } catch (error) {
    if (error instanceof Error) {
      Object.assign(error, {
        flags: { notFound: provider.isNotFound(error), permanent: provider.isPermanent(error) },
      });
    }
    throw error;
  }
}

export function writeTextFile(path: string, text: string): Promise<void> {
  return writeFile(path, text);
}

export function readTextFile(path: string): Promise<string> {
  return readFile(path, 'utf8');
}

export function removeFile(path: string): Promise<void> {
  return rm(path, { force: true });
}

export function realPath(path: string): Promise<string> {
  return realpath(path);
}

/** Mount `device` read-only as the core does, on a new temp dir; returns the dir. */
export async function mountDevice(device: string, fsType: string): Promise<string> {
  const mountPoint = await mkdtemp(join(tmpdir(), 'dssnap-guest-mnt-'));
  await mountReadOnly(device, mountPoint, fsType);
  return mountPoint;
}

export function unmountDevice(mountPoint: string): Promise<void> {
  return ensureUnmounted(mountPoint);
}
