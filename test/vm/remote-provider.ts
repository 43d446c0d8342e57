/**
 * A SnapshotProvider on the host whose every call runs the real provider inside the VM (guest-provider.ts),
 * so host-side suites — the shared contract suite first — test a provider that needs the VM's kernel.
 * Errors come back as RemoteError with the guest provider's isNotFound / isPermanent verdicts.
 */
import type { ProviderOptions, SnapshotProvider } from '../../src/provider/types.js';
import type { ProviderFacts } from './guest-provider.js';
import { RemoteError, type Vm } from './vm.js';

const guestModule = 'test/vm/guest-provider.js';

/** Build provider `id` in the guest and return its host-side mirror. */
export async function remoteProvider(
  vm: Vm,
  id: string,
  options: ProviderOptions,
): Promise<SnapshotProvider> {
  const facts = await vm.call<ProviderFacts>(guestModule, 'createProvider', id, options);
  const invoke = <T>(method: string, ...args: unknown[]): Promise<T> =>
    vm.call<T>(guestModule, 'invokeProvider', facts.handle, method, args);
  const flag = (error: unknown, name: string): boolean =>
    error instanceof RemoteError && error.flags[name] === true;
  const has = (method: string): boolean => facts.optional.includes(method);
  return {
    id: facts.id,
    defaultQuiesce: facts.defaultQuiesce,
    supportedQuiesce: facts.supportedQuiesce,
    permissions: facts.permissions,
    locate: (dataDir) => invoke('locate', dataDir),
    createSnapshots: (volumes, tags) => invoke('createSnapshots', volumes, tags),
    progress: (snapshot) => invoke('progress', snapshot),
    expose: (snapshot, tags) => invoke('expose', snapshot, tags),
    ensureReleased: (exposure) => invoke('ensureReleased', exposure),
    ensureDeleted: (snapshot) => invoke('ensureDeleted', snapshot),
    retain: (snapshot, tags) => invoke('retain', snapshot, tags),
    list: (selector) => invoke('list', selector),
    orphans: (selector) => invoke('orphans', selector),
    ...(has('doctor') ? { doctor: (context) => invoke('doctor', context) } : {}),
    ...(has('checkQuiesce')
      ? { checkQuiesce: (volumes, quiesce) => invoke('checkQuiesce', volumes, quiesce) }
      : {}),
    ...(has('checkExposure') ? { checkExposure: (exposure) => invoke('checkExposure', exposure) } : {}),
    isNotFound: (error) => flag(error, 'notFound'),
    // An error that did not come from the guest provider (the channel itself) is not worth retrying.
    isPermanent: (error) => !(error instanceof RemoteError) || flag(error, 'permanent'),
  };
}

/** The contract suite's file operations (ContractFiles), done in the guest. */
export function guestFiles(vm: Vm) {
  return {
    writeFile: (path: string, text: string) => vm.call<void>(guestModule, 'writeTextFile', path, text),
    readFile: (path: string) => vm.call<string>(guestModule, 'readTextFile', path),
    rm: (path: string) => vm.call<void>(guestModule, 'removeFile', path),
    realpath: (path: string) => vm.call<string>(guestModule, 'realPath', path),
    mountReadOnly: (device: string, fsType: string) =>
      vm.call<string>(guestModule, 'mountDevice', device, fsType),
    unmount: (mountPoint: string) => vm.call<void>(guestModule, 'unmountDevice', mountPoint),
  };
}
