import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeImds, startFakeImds } from '../../test/fakes/imds-aws.js';
import { freePort } from '../../test/support/moto.js';
import { sdkShouldRetry } from './client.js';
import {
  deviceLetters,
  freeDeviceNames,
  nvmeLinkName,
  parseLsblkSerial,
  parseNvmeLinkName,
  volumeIdFromSerial,
  xenDevicePaths,
} from './devices.js';
import { AwsApiError, classifyAwsError, isAwsNotFound, isAwsPermanent } from './errors.js';
import { readInstanceIdentity } from './imds.js';
import { createAwsProvider, factory } from './index.js';
import { awsPermissions } from './permissions.js';
import { resolveSettings } from './schema.js';

function sdkError(name: string, status?: number, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name} happened`), {
    name,
    ...(status === undefined ? {} : { $metadata: { httpStatusCode: status, requestId: 'req-1' } }),
    ...extra,
  });
}

describe('aws provider settings', () => {
  it('is built without contacting anything, with fsfreeze as its default quiesce', () => {
    const provider = createAwsProvider({ stateDir: '/nonexistent' });

    expect(factory.id).toBe('aws');
    expect(provider.defaultQuiesce).toBe('fsfreeze');
    expect(provider.supportedQuiesce.fsfreeze).toBe(true);
    expect(provider.apiCalls()).toEqual({});
  });

  it.each([
    [{ accessKeyId: 'AKIA…' }, "unknown setting(s) 'accessKeyId' (valid: region, endpoint, imdsEndpoint"],
    [{ volumes: ['vol-xyz'] }, "setting 'volumes.0' = \"vol-xyz\": must be 'vol-…' or 'vol-…=/mount/point'"],
    [{ deviceDir: 'dev/disk' }, 'setting \'deviceDir\' = "dev/disk": must be an absolute path'],
    [{ pollInterval: 'soon' }, 'setting \'pollInterval\' = "soon"'],
    [{ volumeType: 'gp9' }, 'setting \'volumeType\' = "gp9"'],
  ])('refuses %j, naming the setting', (settings, message) => {
    const creating = () => createAwsProvider({ stateDir: '/tmp', settings });

    expect(creating).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(message) }),
    );
  });

  it('applies defaults, the SDK’s IMDS endpoint variable and volume overrides', () => {
    const resolved = resolveSettings(
      { volumes: ['vol-0123456789abcdef0', 'vol-0123456789abcdef1=/data/dss/managed_folders/'] },
      { AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://[fd00:ec2::254]/' },
    );

    expect(resolved).toMatchObject({
      imdsEndpoint: 'http://[fd00:ec2::254]',
      deviceDir: '/dev/disk/by-id',
      volumeType: 'gp3',
      maxAttempts: 5,
      requestTimeoutMs: 30_000,
      pollIntervalMs: 1_000,
      volumes: [
        { volumeId: 'vol-0123456789abcdef0' },
        { volumeId: 'vol-0123456789abcdef1', mountPoint: '/data/dss/managed_folders' },
      ],
    });
  });
});

describe('aws error classification', () => {
  it.each([
    ['RequestLimitExceeded', 503, 'throttling', false, false],
    ['SnapshotCreationPerVolumeRateExceeded', 400, 'throttling', false, false],
    ['IncorrectState', 400, 'transient', false, false],
    ['VolumeInUse', 400, 'transient', false, false],
    ['InternalError', 500, 'transient', false, false],
    ['TimeoutError', undefined, 'transient', false, false],
    ['InvalidSnapshot.NotFound', 400, 'not-found', true, true],
    ['InvalidVolume.NotFound', 400, 'not-found', true, true],
    ['UnauthorizedOperation', 403, 'denied', true, false],
    ['AuthFailure', 401, 'credentials', true, false],
    ['InvalidParameterValue', 400, 'permanent', true, false],
  ] as const)('%s (HTTP %s) is %s: permanent %s, not found %s', (code, status, kind, permanent, notFound) => {
    const error = new AwsApiError('CreateSnapshot', sdkError(code, status));

    expect(classifyAwsError(sdkError(code, status))).toBe(kind);
    expect(error.kind).toBe(kind);
    expect(isAwsPermanent(error)).toBe(permanent);
    expect(isAwsNotFound(error)).toBe(notFound);
  });

  it('names the missing IAM action of a denial, without the encoded authorization message', () => {
    const denied = sdkError('UnauthorizedOperation', 403, {
      message:
        'You are not authorized to perform this operation. Encoded authorization failure message: SECRETISH',
    });

    const error = new AwsApiError('DeleteVolume', denied);

    expect(error.message).toBe(
      'AWS denied ec2:DeleteVolume (UnauthorizedOperation): the credentials in use lack the IAM permission ec2:DeleteVolume',
    );
    expect(error.hint).toContain('Allow ec2:DeleteVolume');
    expect(JSON.stringify(error.details)).not.toContain('SECRETISH');
    expect(error.details).toMatchObject({
      action: 'ec2:DeleteVolume',
      awsCode: 'UnauthorizedOperation',
      requestId: 'req-1',
    });
  });

  it.each([
    ['throttling on a create', 'RequestLimitExceeded', 503, 'CreateSnapshot', true],
    ['a 500 on a create (EC2 may have made it)', 'InternalError', 500, 'CreateSnapshot', false],
    ['a lost answer on an attach', 'TimeoutError', undefined, 'AttachVolume', false],
    ['a 500 on a describe', 'InternalError', 500, 'DescribeSnapshots', true],
    ['a reset on a delete', 'ECONNRESET', undefined, 'DeleteVolume', true],
    ['a denial', 'UnauthorizedOperation', 403, 'DescribeVolumes', false],
  ] as const)('the SDK repeats %s: %s', (_what, code, status, action, retried) => {
    const error = Object.assign(sdkError(code, status, code.startsWith('E') ? { code } : {}), {
      $dssnapAction: action,
    });

    expect(sdkShouldRetry(error)).toBe(retried);
  });
});

describe('EBS devices', () => {
  it.each([
    ['nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0', { volumeId: 'vol-0123456789abcdef0' }],
    ['nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0_1', { volumeId: 'vol-0123456789abcdef0' }],
    [
      'nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0-part2',
      { volumeId: 'vol-0123456789abcdef0', partition: 2 },
    ],
    ['nvme-Amazon_EC2_NVMe_Instance_Storage_AWS1234', undefined],
    ['wwn-0x5000c500a1b2c3d4', undefined],
  ])('reads the by-id link %s', (name, expected) => {
    expect(parseNvmeLinkName(name)).toEqual(expected);
  });

  it('names the link of a volume as udev does, and reads NVMe serials', () => {
    expect(nvmeLinkName('vol-0123456789abcdef0')).toBe(
      'nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0',
    );
    expect(volumeIdFromSerial('vol0123456789abcdef0')).toBe('vol-0123456789abcdef0');
    expect(volumeIdFromSerial('vol-0123456789abcdef0 ')).toBe('vol-0123456789abcdef0');
    expect(volumeIdFromSerial('S4EVNX0M123456')).toBeUndefined();
    expect(
      parseLsblkSerial(
        '{"blockdevices":[{"name":"nvme1n1","serial":"vol0123456789abcdef0","model":"Amazon Elastic Block Store"}]}',
      ),
    ).toBe('vol0123456789abcdef0');
    expect(
      parseLsblkSerial(
        '{"blockdevices":[{"name":"nvme0n1","serial":"AWS1234","model":"Amazon EC2 NVMe Instance Storage"}]}',
      ),
    ).toBeUndefined();
  });

  it('picks a free device name, treating xvdX and /dev/sdX as the same', () => {
    expect(freeDeviceNames(['/dev/xvda', '/dev/sdf', 'xvdg'])[0]).toBe('/dev/sdh');
    expect(freeDeviceNames('fghijklmnop'.split('').map((l) => `/dev/sd${l}`))).toEqual([]);
    expect(deviceLetters('/dev/xvdf')).toBe('sdf');
    expect(xenDevicePaths('/dev/sdf')).toEqual(['/dev/xvdf', '/dev/sdf']);
  });
});

describe('aws permissions', () => {
  it('declares exactly the EC2 actions the provider sends', async () => {
    // doctor.ts sends every action with DryRun: the provider's own calls are in the other modules.
    const modules = (await readdir(import.meta.dirname)).filter(
      (f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && f !== 'doctor.ts',
    );
    const sources = await Promise.all(modules.map((f) => readFile(join(import.meta.dirname, f), 'utf8')));
    const sent = sources.flatMap((source) =>
      [...source.matchAll(/new (\w+)Command\(/g)].map((m) => `ec2:${m[1]}`),
    );
    // Tag-on-create (TagSpecifications) needs ec2:CreateTags as well.
    const called = new Set([...sent, 'ec2:CreateTags']);

    expect(awsPermissions.map((p) => p.action).sort()).toEqual([...called].sort());
    expect(createAwsProvider({ stateDir: '/tmp' }).permissions).toBe(awsPermissions);
  });
});

describe('lazy loading', () => {
  it('keeps the AWS SDK out of the core: only the registry’s dynamic import reaches this provider', async () => {
    const src = join(import.meta.dirname, '..', '..', 'src');
    const files = (await readdir(src, { recursive: true })).filter((f) => f.endsWith('.ts'));
    const importing: string[] = [];
    for (const file of files) {
      const text = await readFile(join(src, file), 'utf8');
      if (/from '@aws-sdk\/|import\('@aws-sdk\/|from '\.\.\/\.\.\/providers\/aws\//.test(text))
        importing.push(file);
    }
    const registry = await readFile(join(src, 'provider', 'registry.ts'), 'utf8');

    expect(importing).toEqual([]);
    expect(registry).toContain("aws: () => import('../../providers/aws/index.js')");
  });
});

describe('IMDSv2', () => {
  let imds: FakeImds;

  beforeAll(async () => {
    imds = await startFakeImds({
      instanceId: 'i-0123456789abcdef0',
      availabilityZone: 'eu-west-3b',
      region: 'eu-west-3',
    });
  });
  afterAll(async () => {
    await imds?.close();
  });

  it('asks for a token first, then reads the instance, zone and region with it', async () => {
    const identity = await readInstanceIdentity({ endpoint: imds.url });

    expect(identity).toEqual({
      instanceId: 'i-0123456789abcdef0',
      availabilityZone: 'eu-west-3b',
      region: 'eu-west-3',
    });
    expect(imds.requests).toEqual([
      'PUT /latest/api/token 200',
      'GET /latest/meta-data/instance-id 200',
      'GET /latest/meta-data/placement/availability-zone 200',
      'GET /latest/meta-data/placement/region 200',
    ]);
  });

  it('says what to check when IMDS cannot be reached', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;

    const reading = readInstanceIdentity({ endpoint, timeoutMs: 500, attempts: 2 });

    await expect(reading).rejects.toMatchObject({
      code: 'PROVIDER_ERROR',
      message: expect.stringContaining(
        `Cannot read /latest/api/token from the EC2 instance metadata service (IMDSv2) at ${endpoint}`,
      ),
      hint: expect.stringContaining('hop limit'),
    });
  });
});
