/**
 * The shared contract suite over the real LVM provider, on real LVM inside the test VM (this machine's
 * kernel has no device-mapper). The suite runs here, on the host; each provider call and file operation
 * runs in the VM through its agent (test/vm/remote-provider.ts), where Node is too slow to run vitest.
 * DATA_DIR is a directory on an XFS logical volume, so `relativePath` is exercised too.
 */
import { vi } from 'vitest';
import { createFilesystemLv, dssnapLvs, setUpVolumeGroup } from '../vm/lvm-guest.js';
import { guestFiles, remoteProvider } from '../vm/remote-provider.js';
import { bootVm } from '../vm/vm.js';
import { describeProviderContract } from './provider-contract.js';

// Real LVM under TCG on a shared 2-core machine: a boot and each LVM command take seconds.
vi.setConfig({ testTimeout: 300_000, hookTimeout: 600_000 });

describeProviderContract('lvm', async () => {
  const vm = await bootVm();
  try {
    await setUpVolumeGroup(vm, 'dssnap');
    await createFilesystemLv(vm, {
      vg: 'dssnap',
      name: 'data',
      sizeMb: 320,
      fsType: 'xfs',
      mountPoint: '/srv/dss',
    });
    await vm.sh('mkdir -p /srv/dss/data_dir/config');
    const provider = await remoteProvider(vm, 'lvm', { stateDir: '/var/lib/dssnap' });
    return {
      provider,
      dataDir: '/srv/dss/data_dir',
      files: guestFiles(vm),
      cleanup: async () => {
        try {
          const left = await dssnapLvs(vm);
          if (left.length > 0) throw new Error(`The contract suite left LVs behind: ${left.join(', ')}`);
        } finally {
          await vm.dispose();
        }
      },
    };
  } catch (error) {
    await vm.dispose();
    throw error;
  }
});
