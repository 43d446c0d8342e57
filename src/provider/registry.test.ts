import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { detectProvider, loadProvider, providerIds } from './registry.js';

const providersDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'providers');

describe('provider registry', () => {
  it('registers exactly the folders under providers/', async () => {
    const folders = (await readdir(providersDir, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();

    const ids = providerIds();

    expect(ids).toEqual(folders);
  });

  it.each(providerIds())('loads %s, whose module declares the same id', async (id) => {
    const stateDir = await mkdtemp(join(tmpdir(), 'dssnap-registry-'));

    try {
      const provider = await loadProvider(id, { stateDir });

      expect(provider.id).toBe(id);
      expect(provider.supportedQuiesce[provider.defaultQuiesce]).toBe(true);
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  it('refuses an unknown provider, listing the valid ones', async () => {
    const loading = loadProvider('zfs', { stateDir: tmpdir() });

    await expect(loading).rejects.toMatchObject({
      code: 'UNKNOWN_PROVIDER',
      message: `Unknown provider 'zfs': must be one of: ${providerIds().join(', ')}`,
    });
  });

  it('says no provider applies to a filesystem without snapshots, pointing to --mode cold', async () => {
    // /proc is never a btrfs filesystem, whatever the machine.
    const error = await detectProvider('/proc').catch((thrown: unknown) => thrown);

    expect(error).toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringContaining("No snapshot provider applies to '/proc'"),
    });
    expect(error).toMatchObject({ hint: expect.stringContaining('--mode cold') });
  });

  it('reports a DATA_DIR that does not exist', async () => {
    const detecting = detectProvider('/nonexistent/dss-data');

    await expect(detecting).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringContaining('/nonexistent/dss-data'),
    });
  });
});
