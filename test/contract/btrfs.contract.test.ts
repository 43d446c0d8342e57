import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBtrfsProvider } from '../../providers/btrfs/index.js';
import { createLoopVolume } from '../support/loop-volume.js';
import { describeProviderContract } from './provider-contract.js';

// A real btrfs filesystem on a loop device, DATA_DIR being its own subvolume, as in production.
describeProviderContract('btrfs', async () => {
  const volume = await createLoopVolume({ fsType: 'btrfs', subvolume: 'dss-data' });
  const stateDir = await mkdtemp(join(tmpdir(), 'dssnap-contract-btrfs-state-'));
  const dataDir = volume.subvolumePath!;
  await mkdir(join(dataDir, 'config'), { recursive: true });
  const provider = createBtrfsProvider({ stateDir });
  return {
    provider,
    dataDir,
    cleanup: async () => {
      await volume.dispose();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
});
