/**
 * The ARM fake against the real `@azure/arm-compute` SDK and against Microsoft's REST API
 * specification (azure-rest-api-specs: DiskRP 2024-03-02 and ComputeRP 2024-07-01 examples for
 * snapshots, disks and virtual machines), so that the fake cannot drift from the real API: its answers
 * deserialize into the SDK's models with every field the provider reads, its raw JSON has the
 * specification's field names and types, the SDK's requests carry what the real API requires, and
 * errors, long-running operations and throttling behave as ARM's do.
 */
import { request as httpsRequest } from 'node:https';
import type { TokenCredential } from '@azure/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ArmClient, createArmClient } from '../../providers/azure/arm.js';
import { AzureError, isAzureNotFound, isAzurePermanent } from '../../providers/azure/errors.js';
import { readInstanceMetadata } from '../../providers/azure/imds.js';
import { type AzureArmFake, armApiVersions, startAzureArmFake } from '../fakes/azure-arm.js';
import { type AzureImdsFake, startAzureImdsFake } from '../fakes/azure-imds.js';
import { createTestCertificate, type TestCertificate } from '../support/tls.js';

const rg = 'shapes-rg';
const token = 'shapes-token';
const credential: TokenCredential = {
  getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }),
};

/** Type of the value at a dotted path of a JSON document ('array' for arrays, 'missing' when absent). */
function typeAt(document: unknown, path: string): string {
  let value: unknown = document;
  for (const key of path.split('.')) {
    if (value === null || typeof value !== 'object') return 'missing';
    value = (value as Record<string, unknown>)[key];
  }
  if (value === undefined) return 'missing';
  return Array.isArray(value) ? 'array' : typeof value;
}

describe('the ARM fake, the SDK and the REST API specification', () => {
  let certificate: TestCertificate;
  let arm: AzureArmFake;
  let imds: AzureImdsFake;
  let client: ArmClient;
  let dataDiskId: string;
  let failNextSnapshot = false;

  interface RawAnswer {
    status: number;
    headers: Record<string, unknown>;
    body: unknown;
  }

  /** One HTTPS request to the fake without the SDK, to see the raw JSON and headers. */
  function raw(path: string, method = 'GET', body?: unknown): Promise<RawAnswer> {
    return new Promise((resolve, reject) => {
      const request = httpsRequest(
        new URL(path, arm.url),
        {
          method,
          agent: certificate.agent(),
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({
              status: response.statusCode ?? 0,
              headers: response.headers,
              body: text ? JSON.parse(text) : undefined,
            });
          });
        },
      );
      request.on('error', reject);
      request.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }

  function resourcePath(type: string, name: string, apiVersion = '2024-03-02'): string {
    return `/subscriptions/${arm.subscription}/resourceGroups/${rg}/providers/Microsoft.Compute/${type}/${name}?api-version=${apiVersion}`;
  }

  beforeAll(async () => {
    certificate = await createTestCertificate();
    arm = await startAzureArmFake({
      tls: { cert: certificate.cert, key: certificate.key },
      pageSize: 2,
      hooks: {
        snapshotCreated: async () => {
          if (failNextSnapshot) {
            failNextSnapshot = false;
            throw new Error('storage backend unavailable');
          }
        },
      },
    });
    arm.acceptToken(token);
    arm.addVm({ resourceGroup: rg, name: 'vm1', zone: '1' });
    dataDiskId = arm.addDisk({
      resourceGroup: rg,
      name: 'data0',
      sizeGb: 4,
      zone: '1',
      sku: 'Premium_LRS',
    }).id;
    await arm.attach('vm1', dataDiskId, 0);
    imds = await startAzureImdsFake(arm, 'vm1');
    client = await createArmClient({
      endpoint: arm.url,
      scope: 'https://management.azure.com/.default',
      subscription: arm.subscription,
      credential,
      agent: certificate.agent(),
      pollIntervalMs: 10,
      requestRetries: 2,
      requestRetryDelayMs: 20,
    });
  });
  afterAll(async () => {
    await imds?.close();
    await arm?.close();
    await certificate?.dispose();
  });

  it('a snapshot deserializes with every field the provider reads, rising to completionPercent 100', async () => {
    const created = await client.createSnapshot(rg, 'snap-a', {
      location: 'westeurope',
      tags: { 'dssnap:role': 'snapshot' },
      creationData: { createOption: 'Copy', sourceResourceId: dataDiskId },
      incremental: true,
    });
    const percents: Array<number | undefined> = [];
    for (let i = 0; i < 4; i++) percents.push((await client.getSnapshot(rg, 'snap-a')).completionPercent);

    expect(created).toMatchObject({
      id: expect.stringMatching(
        /\/resourceGroups\/shapes-rg\/providers\/Microsoft\.Compute\/snapshots\/snap-a$/,
      ),
      name: 'snap-a',
      tags: { 'dssnap:role': 'snapshot' },
      provisioningState: 'Succeeded',
      incremental: true,
      creationData: { createOption: 'Copy', sourceResourceId: dataDiskId },
    });
    expect(created.timeCreated).toBeInstanceOf(Date);
    expect(percents.at(-1)).toBe(100);
    expect(percents.every((p, i) => i === 0 || (p ?? 0) >= (percents[i - 1] ?? 0))).toBe(true);
  });

  it.each([
    ['id', 'string'],
    ['name', 'string'],
    ['type', 'string'],
    ['location', 'string'],
    ['tags', 'object'],
    ['sku.name', 'string'],
    ['properties.creationData.createOption', 'string'],
    ['properties.creationData.sourceResourceId', 'string'],
    ['properties.creationData.sourceUniqueId', 'string'],
    ['properties.diskSizeGB', 'number'],
    ['properties.diskSizeBytes', 'number'],
    ['properties.incremental', 'boolean'],
    ['properties.incrementalSnapshotFamilyId', 'string'],
    ['properties.completionPercent', 'number'],
    ['properties.uniqueId', 'string'],
    ['properties.timeCreated', 'string'],
    ['properties.provisioningState', 'string'],
  ])('a snapshot GET has %s as a %s (Snapshot_GetIncrementalSnapshot example)', async (path, type) => {
    const answer = await raw(resourcePath('snapshots', 'snap-a'));

    expect(answer.status).toBe(200);
    expect(typeAt(answer.body, path)).toBe(type);
    expect(typeAt(answer.body, 'type') === 'string' && (answer.body as { type: string }).type).toBe(
      'Microsoft.Compute/snapshots',
    );
  });

  it('a disk from the snapshot, attached at a LUN, shows as in the Disk_Get and VirtualMachine_Get examples', async () => {
    const snapshotId = (await client.getSnapshot(rg, 'snap-a')).id!;

    const disk = await client.createDisk(rg, 'exp-a', {
      location: 'westeurope',
      zones: ['1'],
      sku: { name: 'StandardSSD_LRS' },
      tags: { 'dssnap:role': 'exposure' },
      creationData: { createOption: 'Copy', sourceResourceId: snapshotId },
    });
    const profile = await client.attachDisk(rg, 'vm1', { diskId: disk.id!, lun: 1, caching: 'ReadOnly' });
    const attached = await client.getDisk(rg, 'exp-a');
    const vm = await client.getVm(rg, 'vm1');
    const rawDisk = await raw(resourcePath('disks', 'exp-a'));
    const rawVm = await raw(resourcePath('virtualMachines', 'vm1', '2024-07-01'));

    expect(disk).toMatchObject({
      provisioningState: 'Succeeded',
      zones: ['1'],
      sku: { name: 'StandardSSD_LRS' },
    });
    expect(profile.dataDisks?.map((d) => [d.lun, d.managedDisk?.id])).toEqual([
      [0, dataDiskId],
      [1, disk.id],
    ]);
    expect(attached.managedBy).toBe(vm.id);
    expect(vm.storageProfile?.dataDisks?.find((d) => d.lun === 1)?.managedDisk?.id).toBe(disk.id);
    for (const [path, type] of [
      ['managedBy', 'string'],
      ['sku.name', 'string'],
      ['zones', 'array'],
      ['properties.diskState', 'string'],
      ['properties.provisioningState', 'string'],
      ['properties.creationData.sourceResourceId', 'string'],
    ]) {
      expect(typeAt(rawDisk.body, path!), path).toBe(type);
    }
    for (const [path, type] of [
      ['properties.vmId', 'string'],
      ['properties.hardwareProfile.vmSize', 'string'],
      ['properties.storageProfile.osDisk.managedDisk.id', 'string'],
      ['properties.storageProfile.dataDisks', 'array'],
      ['properties.provisioningState', 'string'],
    ]) {
      expect(typeAt(rawVm.body, path!), path).toBe(type);
    }
    const dataDisk = (rawVm.body as { properties: { storageProfile: { dataDisks: unknown[] } } }).properties
      .storageProfile.dataDisks[1];
    expect(dataDisk).toMatchObject({
      lun: 1,
      createOption: 'Attach',
      caching: 'ReadOnly',
      managedDisk: { id: disk.id },
    });

    await client.detachDisk(rg, 'vm1', disk.id!);
    await client.deleteDisk(rg, 'exp-a');
  });

  it('the SDK sends the bodies and api-versions the real API requires', () => {
    const requests = arm.requests.filter((r) => r.status < 400);
    const snapshotPut = requests.find((r) => r.method === 'PUT' && r.path.endsWith('/snapshots/snap-a'));
    const diskPut = requests.find((r) => r.method === 'PUT' && r.path.endsWith('/disks/exp-a'));
    const attach = requests.find((r) => r.method === 'POST');

    // Snapshot_Create_FromAnExistingSnapshot / Disk_Create_ByCopyingASnapshot: location and
    // properties.creationData.{createOption, sourceResourceId}; incremental under properties.
    expect(snapshotPut!.body).toEqual({
      location: 'westeurope',
      tags: { 'dssnap:role': 'snapshot' },
      properties: { creationData: { createOption: 'Copy', sourceResourceId: dataDiskId }, incremental: true },
    });
    expect(diskPut!.body).toMatchObject({
      location: 'westeurope',
      zones: ['1'],
      sku: { name: 'StandardSSD_LRS' },
      properties: { creationData: { createOption: 'Copy' } },
    });
    // VirtualMachine_AttachDetachDataDisks: dataDisksToAttach[].{diskId, lun, caching, deleteOption}.
    expect(attach!.body).toEqual({
      dataDisksToAttach: [
        { diskId: expect.any(String), lun: 1, caching: 'ReadOnly', deleteOption: 'Detach' },
      ],
    });
    for (const request of requests) {
      const family = /virtualMachines|\/operations\//i.test(request.path) ? 'virtualMachines' : 'disks';
      expect(armApiVersions[family] as readonly string[]).toContain(request.apiVersion);
    }
  });

  it('a PUT answers 202 with Azure-AsyncOperation and Location, and its operation is InProgress for a few polls', async () => {
    const put = await raw(resourcePath('snapshots', 'snap-raw'), 'PUT', {
      location: 'westeurope',
      properties: { creationData: { createOption: 'Copy', sourceResourceId: dataDiskId } },
    });
    const statusUrl = String(put.headers['azure-asyncoperation']);
    const polls: unknown[] = [];
    for (let i = 0; i < 4; i++) polls.push((await raw(statusUrl)).body);

    expect(put.status).toBe(202);
    expect(put.body).toMatchObject({ name: 'snap-raw', properties: { provisioningState: 'Updating' } });
    expect(statusUrl).toMatch(
      /\/providers\/Microsoft\.Compute\/locations\/westeurope\/DiskOperations\/[0-9a-f-]+\?/,
    );
    expect(String(put.headers.location)).toBe(`${statusUrl}&monitor=true`);
    expect(polls.map((poll) => (poll as { status: string }).status)).toEqual([
      'InProgress',
      'InProgress',
      'Succeeded',
      'Succeeded',
    ]);
  });

  it('lists follow nextLink pages', async () => {
    for (const name of ['snap-b', 'snap-c']) {
      await client.createSnapshot(rg, name, {
        location: 'westeurope',
        creationData: { createOption: 'Copy', sourceResourceId: dataDiskId },
        incremental: false,
      });
    }

    const listed = await client.listSnapshots(rg);
    const firstPage = await raw(
      `/subscriptions/${arm.subscription}/resourceGroups/${rg}/providers/Microsoft.Compute/snapshots?api-version=2024-03-02`,
    );

    expect(listed.map((s) => s.name).sort()).toEqual(['snap-a', 'snap-b', 'snap-c', 'snap-raw']);
    expect(typeAt(firstPage.body, 'nextLink')).toBe('string');
    expect((firstPage.body as { value: unknown[] }).value).toHaveLength(2);
  });

  it.each<[string, () => void, (error: AzureError) => void]>([
    [
      '404 ResourceNotFound is "not found"',
      () => undefined,
      (error) => {
        expect(isAzureNotFound(error)).toBe(true);
        expect(error.armCode).toBe('ResourceNotFound');
      },
    ],
    [
      '403 AuthorizationFailed is permanent and names the action',
      () => arm.deny('Microsoft.Compute/snapshots/read', 1),
      (error) => {
        expect(isAzurePermanent(error)).toBe(true);
        expect(error.action).toBe('Microsoft.Compute/snapshots/read');
        expect(error.message).toContain("'Microsoft.Compute/snapshots/read'");
      },
    ],
    [
      '409 OperationNotAllowed is retryable',
      () => arm.inject({ method: 'GET', status: 409, code: 'OperationNotAllowed', times: 3 }),
      (error) => {
        expect(isAzurePermanent(error)).toBe(false);
        expect(error.statusCode).toBe(409);
      },
    ],
    [
      '400 InvalidParameter is permanent',
      () => arm.inject({ method: 'GET', status: 400, code: 'InvalidParameter', times: 1 }),
      (error) => expect(isAzurePermanent(error)).toBe(true),
    ],
    [
      '500 after the SDK gave up is retryable',
      () => arm.inject({ method: 'GET', status: 500, code: 'InternalServerError', times: 3 }),
      (error) => expect(isAzurePermanent(error)).toBe(false),
    ],
  ])('%s', async (_name, arrange, check) => {
    arrange();

    const error = await client.getSnapshot(rg, 'missing').catch((thrown: unknown) => thrown);

    arm.clearFaults();
    expect(error).toBeInstanceOf(AzureError);
    check(error as AzureError);
  });

  it('an attach while another operation holds the VM is refused 409 OperationNotAllowed, a retryable error', async () => {
    arm.busyVm('vm1', 1);

    const error = await client
      .attachDisk(rg, 'vm1', { diskId: dataDiskId, lun: 9, caching: 'None' })
      .catch((thrown: unknown) => thrown);

    expect(error).toMatchObject({ statusCode: 409, armCode: 'OperationNotAllowed' });
    expect(isAzurePermanent(error)).toBe(false);
  });

  it('an invalid token is refused with 401, a permanent error', async () => {
    const stranger = await createArmClient({
      endpoint: arm.url,
      scope: 'https://management.azure.com/.default',
      subscription: arm.subscription,
      credential: {
        getToken: async () => ({ token: 'not-issued', expiresOnTimestamp: Date.now() + 60_000 }),
      },
      agent: certificate.agent(),
      pollIntervalMs: 10,
      requestRetries: 0,
      requestRetryDelayMs: 10,
    });

    const error = await stranger.getSnapshot(rg, 'snap-a').catch((thrown: unknown) => thrown);

    expect(error).toMatchObject({ statusCode: 401, armCode: 'InvalidAuthenticationToken' });
    expect(isAzurePermanent(error)).toBe(true);
  });

  it('a failed operation surfaces its ARM error code', async () => {
    failNextSnapshot = true;

    const error = await client
      .createSnapshot(rg, 'snap-failing', {
        location: 'westeurope',
        creationData: { createOption: 'Copy', sourceResourceId: dataDiskId },
        incremental: true,
      })
      .catch((thrown: unknown) => thrown);

    expect(error).toMatchObject({ armCode: 'InternalExecutionError', retryable: true });
    expect((error as Error).message).toMatch(/storage backend unavailable/);
  });

  it('the SDK honours Retry-After on a 429 and then succeeds', async () => {
    arm.inject({ method: 'GET', status: 429, code: 'TooManyRequests', retryAfter: 2, times: 1 });
    const started = Date.now();

    const snapshot = await client.getSnapshot(rg, 'snap-a');

    expect(snapshot.name).toBe('snap-a');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
  });

  it('an unknown api-version is refused as ARM refuses it', async () => {
    const answer = await raw(resourcePath('snapshots', 'snap-a', '2019-01-01'));

    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ error: { code: 'NoRegisteredProviderFound' } });
  });

  it('IMDS gives the VM, its zone and its data disks by LUN, and refuses a request without Metadata: true', async () => {
    const metadata = await readInstanceMetadata(imds.url);
    const bare = await fetch(`${imds.url}/metadata/instance?api-version=2021-02-01`);

    expect(metadata).toMatchObject({
      subscription: arm.subscription,
      resourceGroup: rg,
      vmName: 'vm1',
      location: 'westeurope',
      zone: '1',
      azEnvironment: 'AzurePublicCloud',
      dataDisks: [{ lun: 0, diskId: dataDiskId, storageAccountType: 'Premium_LRS', sizeGb: 4 }],
    });
    expect(bare.status).toBe(400);
  });
});
