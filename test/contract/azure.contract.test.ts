import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { TokenCredential } from '@azure/identity';
import { createAzureProvider } from '../../providers/azure/index.js';
import { createAzureTestCloud } from '../support/azure-cloud.js';
import { disposeExpectingNothingLeft, disposeOnFailure } from '../support/cloud-harness.js';
import { describeProviderContract } from './provider-contract.js';

// The real SDK over HTTPS to the ARM fake, with a test TokenCredential and an agent trusting the test
// certificate (the provider's test seams); DATA_DIR on a real ext4 "managed disk" at LUN 0 (a loop
// device the host simulator attached); snapshots, temporary disks and their devices made as asked.
describeProviderContract('azure', async () =>
  disposeOnFailure(await createAzureTestCloud(), async (cloud) => {
    const disk = await cloud.createDataDisk({
      name: 'contract-data',
      lun: 0,
      fsType: 'ext4',
      mountPoint: join(cloud.work, 'data'),
    });
    const dataDir = join(disk.mountPoint, 'dss');
    await mkdir(join(dataDir, 'config'), { recursive: true });
    const token = 'contract-suite-token';
    cloud.arm.acceptToken(token);
    const credential: TokenCredential = {
      getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }),
    };
    const { caFile: _, ...settings } = cloud.providerSettings();
    const provider = createAzureProvider(
      { stateDir: join(cloud.work, 'state'), settings },
      { credential, agent: cloud.certificate.agent() },
    );
    return { provider, dataDir, cleanup: () => disposeExpectingNothingLeft(cloud) };
  }),
);
