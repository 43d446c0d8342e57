import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFakeProvider } from '../../providers/fake/index.js';
import { describeProviderContract } from './provider-contract.js';

describeProviderContract('fake', async () => {
  const root = await mkdtemp(join(tmpdir(), 'dssnap-contract-fake-'));
  const dataDir = join(root, 'dss-data');
  await mkdir(join(dataDir, 'config'), { recursive: true });
  const provider = await createFakeProvider({ stateDir: join(root, 'state'), settings: { pendingPolls: 2 } });
  return { provider, dataDir, cleanup: () => rm(root, { recursive: true, force: true }) };
});
