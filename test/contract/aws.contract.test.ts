import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createAwsProvider } from '../../providers/aws/index.js';
import { createAwsTestCloud } from '../support/aws-cloud.js';
import { disposeExpectingNothingLeft, disposeOnFailure } from '../support/cloud-harness.js';
import { describeProviderContract } from './provider-contract.js';

// The real SDK over HTTP to moto's EC2; DATA_DIR on a real XFS "EBS volume" (a loop device the host
// simulator attached); snapshots, temporary volumes and their devices made as the provider asks.
describeProviderContract('aws', async () =>
  disposeOnFailure(await createAwsTestCloud(), async (cloud) => {
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
    return { provider, dataDir, cleanup: () => disposeExpectingNothingLeft(cloud) };
  }),
);
