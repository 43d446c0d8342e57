import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isAllowed } from './doctor.js';
import { cloudEndpoints, parseInstanceMetadata } from './imds.js';
import { createAzureProvider, factory } from './index.js';
import { azurePermissions } from './permissions.js';
import { diskOverrides, parseAzureSettings } from './settings.js';

// The SDKs must load only when a call needs ARM: importing or building the provider never loads them.
vi.mock('@azure/arm-compute', () => {
  throw new Error('@azure/arm-compute was loaded');
});
vi.mock('@azure/identity', () => {
  throw new Error('@azure/identity was loaded');
});

describe('azure provider', () => {
  let stateDir: string;

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'dssnap-azure-unit-'));
  });
  afterAll(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it('builds without loading the Azure SDKs, and declares fsfreeze as its default', async () => {
    const provider = await factory.create({ stateDir });

    expect(provider).toMatchObject({ id: 'azure', defaultQuiesce: 'fsfreeze' });
    expect(provider.supportedQuiesce).toMatchObject({ fsfreeze: true, stop: true, none: expect.any(String) });
    expect(provider.permissions.map((permission) => permission.action)).toContain(
      'Microsoft.Compute/virtualMachines/attachDetachDataDisks/action',
    );
  });

  it.each<[Record<string, unknown>, RegExp]>([
    [{ region: 'westeurope' }, /unknown setting\(s\) 'region' \(valid: subscription, resourceGroup, vmName/],
    [
      { disks: ['data0'] },
      /setting 'disks\.0' = "data0": must be '<disk resource id>' or '<disk resource id>=\/mount\/point'/,
    ],
    [{ endpoint: 'http://management.azure.com' }, /setting 'endpoint' = .*must be an https:\/\/ URL/],
    [{ exposureDiskSku: 'Cheap_LRS' }, /setting 'exposureDiskSku' = "Cheap_LRS"/],
    [{ pollIntervalMs: 0 }, /setting 'pollIntervalMs' = 0/],
    [{ deviceDir: 'dev/disk' }, /setting 'deviceDir' = "dev\/disk": must be an absolute path/],
  ])('refuses the settings %j', (settings, message) => {
    const building = () => createAzureProvider({ stateDir, settings });

    expect(building).toThrow(message);
  });

  it('off Azure, locate says so (IMDS does not answer) without loading the SDKs', async () => {
    const provider = createAzureProvider({ stateDir, settings: { imdsEndpoint: 'http://127.0.0.1:9' } });

    const locating = provider.locate(stateDir);

    await expect(locating).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringMatching(
        /does not answer at http:\/\/127\.0\.0\.1:9: this does not look like an Azure VM/,
      ),
    });
    expect(provider.isPermanent(await locating.catch((error: unknown) => error))).toBe(true);
  });

  it('locate refuses a DATA_DIR that does not exist', async () => {
    const provider = createAzureProvider({ stateDir });

    await expect(provider.locate(join(stateDir, 'missing'))).rejects.toMatchObject({
      code: 'NOT_A_DATA_DIR',
    });
  });
});

describe('disk overrides (--disk)', () => {
  const id = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/data0';

  it.each([
    [[id], [{ diskId: id }]],
    [[`${id}=/data/dss/managed_datasets/`], [{ diskId: id, mountPoint: '/data/dss/managed_datasets' }]],
    [[`${id}=/`], [{ diskId: id, mountPoint: '/' }]],
  ])('%j means %j', (disks, overrides) => {
    expect(diskOverrides(parseAzureSettings({ disks }))).toEqual(overrides);
  });
});

describe('instance metadata', () => {
  it('reads the VM and its data disks, LUNs being strings in IMDS', () => {
    const metadata = parseInstanceMetadata(
      JSON.stringify({
        compute: {
          subscriptionId: 's',
          resourceGroupName: 'rg',
          name: 'vm',
          location: 'westeurope',
          zone: '',
          storageProfile: {
            dataDisks: [
              {
                lun: '2',
                name: 'd2',
                diskSizeGB: '64',
                managedDisk: { id: '/x/disks/d2', storageAccountType: 'Premium_LRS' },
              },
              { lun: '3', name: 'unmanaged', vhd: { uri: 'https://x' } },
            ],
          },
        },
      }),
    );

    expect(metadata).toMatchObject({
      subscription: 's',
      resourceGroup: 'rg',
      vmName: 'vm',
      vmId: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm',
      zone: '',
      azEnvironment: 'AzurePublicCloud',
      dataDisks: [
        { lun: 2, name: 'd2', diskId: '/x/disks/d2', storageAccountType: 'Premium_LRS', sizeGb: 64 },
      ],
    });
  });

  it('names what IMDS did not report', () => {
    const parsing = () => parseInstanceMetadata(JSON.stringify({ compute: { name: 'vm' } }));

    expect(parsing).toThrow(/did not report subscriptionId, resourceGroupName, location/);
  });

  it.each([
    ['AzurePublicCloud', 'https://management.azure.com'],
    ['AzureUSGovernmentCloud', 'https://management.usgovcloudapi.net'],
    ['AzureChinaCloud', 'https://management.chinacloudapi.cn'],
    ['SomethingNew', 'https://management.azure.com'],
  ])('the ARM endpoint of %s is %s', (environment, endpoint) => {
    expect(cloudEndpoints(environment)).toEqual({ endpoint, scope: `${endpoint}/.default` });
  });
});

describe('RBAC permissions', () => {
  it.each<[string, Array<{ actions: string[]; notActions: string[] }>, boolean]>([
    ['Microsoft.Compute/disks/write', [{ actions: ['*'], notActions: [] }], true],
    ['Microsoft.Compute/disks/write', [{ actions: ['Microsoft.Compute/disks/*'], notActions: [] }], true],
    ['Microsoft.Compute/disks/write', [{ actions: ['microsoft.compute/DISKS/write'], notActions: [] }], true],
    ['Microsoft.Compute/disks/write', [{ actions: ['*/read'], notActions: [] }], false],
    [
      'Microsoft.Compute/disks/delete',
      [{ actions: ['*'], notActions: ['Microsoft.Compute/*/delete'] }],
      false,
    ],
    [
      'Microsoft.Compute/disks/delete',
      [
        { actions: ['*'], notActions: ['Microsoft.Compute/*/delete'] },
        { actions: ['Microsoft.Compute/disks/delete'], notActions: [] },
      ],
      true,
    ],
    ['Microsoft.Compute/snapshots/read', [], false],
  ])('%s with %j is allowed: %s', (action, granted, allowed) => {
    expect(isAllowed(action, granted)).toBe(allowed);
  });

  it('declares each action once, with a reason', () => {
    const actions = azurePermissions.map((permission) => permission.action);

    expect(new Set(actions).size).toBe(actions.length);
    for (const permission of azurePermissions) expect(permission.reason.length).toBeGreaterThan(10);
  });
});
