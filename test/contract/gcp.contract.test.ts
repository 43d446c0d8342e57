import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createGcpProvider } from '../../providers/gcp/index.js';
import { disposeExpectingNothingLeft, disposeOnFailure } from '../support/cloud-harness.js';
import { createGcpTestCloud } from '../support/gcp-cloud.js';
import { describeProviderContract } from './provider-contract.js';

// The real SDK and Application Default Credentials against the Compute and metadata fakes; the disk
// holding DATA_DIR is a real ext4 on a loop device, attached as /dev/disk/by-id/google-dss-data, read back
// through disks attached READ_ONLY (the integration tests cover XFS and the default READ_WRITE).
describeProviderContract('gcp', async () =>
  disposeOnFailure(await createGcpTestCloud(), async (cloud) => {
    Object.assign(process.env, cloud.env);
    const mountPoint = join(cloud.work, 'data');
    await cloud.createDataDisk({ name: 'dss-data', fsType: 'ext4', mountPoint });
    const dataDir = join(mountPoint, 'dss');
    await mkdir(join(dataDir, 'config'), { recursive: true });
    const provider = createGcpProvider({
      stateDir: join(cloud.work, 'state'),
      settings: cloud.providerSettings({ attachMode: 'READ_ONLY' }),
    });
    return { provider, dataDir, cleanup: () => disposeExpectingNothingLeft(cloud) };
  }),
);
