import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createAwsProvider } from '../../providers/aws/index.js';
import { createAwsTestCloud } from '../support/aws-cloud.js';
import { describeProviderContract } from './provider-contract.js';

// The real SDK over HTTP to moto's EC2; DATA_DIR on a real XFS "EBS volume" (a loop device the host
// simulator attached); snapshots, temporary volumes and their devices made as the provider asks.
describeProviderContract('aws', async () => {
  const cloud = await createAwsTestCloud();
  try {
    const volume = await cloud.createDataVolume({
      fsType: 'xfs',
      mountPoint: join(cloud.work, 'data'),
      device: '/dev/sdf',
    });
    const dataDir = join(volume.mountPoint, 'dss');
    await mkdir(join(dataDir, 'config'), { recursive: true });
    const provider = createAwsProvider({
      stateDir: join(cloud.work, 'state'),
      settings: cloud.providerSettings(),
    });
    return {
      provider,
      dataDir,
      cleanup: async () => {
        const left = await cloud.leftovers();
        await cloud.dispose();
        if (cloud.proxy.hookErrors.length > 0) throw cloud.proxy.hookErrors[0];
        if (left.volumes.length + left.snapshots.length + left.devices.length > 0) {
          throw new Error(`The contract suite left resources behind: ${JSON.stringify(left)}`);
        }
      },
    };
  } catch (error) {
    await cloud.dispose();
    throw error;
  }
});
