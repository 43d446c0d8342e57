/**
 * The shared contract suite over the real LVM provider. The suite runs here, on the host; each provider
 * call and file operation runs in the VM through its agent (test/vm/remote-provider.ts), where Node is
 * too slow to run vitest. DATA_DIR is a directory on an XFS logical volume, so `relativePath` is
 * exercised too.
 */
import { describeProviderContract } from '../../contract/provider-contract.js';
import { dssnapLvs, setUpVolumes } from '../../vm/lvm-guest.js';
import { guestFiles, remoteProvider } from '../../vm/remote-provider.js';
import type { LvmTestEnv } from './env.js';

const vg = 'contractvg';

export function lvmContractTests(env: LvmTestEnv, disk: string): void {
  const ready = env.setUp(async () => {
    await setUpVolumes(env.vm, vg, disk, [
      { name: 'data', sizeMb: 320, fsType: 'xfs', mountPoint: '/contract' },
    ]);
    await env.vm.sh('mkdir -p /contract/data_dir/config');
  });
  describeProviderContract('lvm', async () => {
    const { vm } = env;
    await ready();
    const provider = await remoteProvider(vm, 'lvm', { stateDir: '/var/lib/dssnap-contract' });
    return {
      provider,
      dataDir: '/contract/data_dir',
      files: guestFiles(vm),
      cleanup: async () => {
        const left = await dssnapLvs(vm, vg);
        if (left.length > 0) throw new Error(`The contract suite left LVs behind: ${left.join(', ')}`);
      },
    };
  });
}
