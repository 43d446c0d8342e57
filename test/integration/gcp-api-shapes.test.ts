/**
 * The Compute fake stays true to Google's published API description (the protos shipped in
 * `@google-cloud/compute`): its routes are the API's HTTP rules, it refuses what Google refuses, and
 * what it answers to the real SDK driven by the gcp provider matches the API's messages. Also: the SDK
 * is loaded only when the provider first calls the API.
 */
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGcpProvider, type GcpProvider } from '../../providers/gcp/index.js';
import { TagKey, type Volume } from '../../src/provider/types.js';
import { waitForSnapshotsReady } from '../../src/provider/wait.js';
import { type GcpComputeFake, startGcpComputeFake } from '../fakes/gcp-compute.js';
import { type GcpMetadataFake, startGcpMetadataFake } from '../fakes/gcp-metadata.js';
import { messageProblems, routeById } from '../fakes/gcp-proto.js';

const project = 'shapes-project';
const zone = 'us-central1-a';
const instance = 'vm-1';
interface GoogleError {
  error: { code: number; message: string; status?: string; errors: Array<{ reason: string }> };
}

const distProvider = join(import.meta.dirname, '..', '..', 'dist', 'providers', 'gcp', 'index.js');

describe('the GCP Compute fake against the API description', () => {
  let metadata: GcpMetadataFake;
  let compute: GcpComputeFake;
  let provider: GcpProvider;
  let token: string;
  const savedHost = process.env.GCE_METADATA_HOST;

  beforeAll(async () => {
    metadata = await startGcpMetadataFake({ project, zone, instance });
    compute = await startGcpComputeFake({ project, zone, tokens: metadata.tokens });
    compute.addDisk('dss-data', { attachTo: { instance, deviceName: 'dss-data' } });
    process.env.GCE_METADATA_HOST = metadata.host;
    provider = createGcpProvider({
      stateDir: '/tmp',
      settings: {
        apiEndpoint: compute.url,
        pollInterval: '20ms',
        operationTimeout: '20s',
        requestTimeout: '5s',
      },
    });
    const answer = await fetch(`${metadata.url}/computeMetadata/v1/instance/service-accounts/default/token`, {
      headers: { 'Metadata-Flavor': 'Google' },
    });
    token = ((await answer.json()) as { access_token: string }).access_token;
  });
  afterAll(async () => {
    if (savedHost === undefined) delete process.env.GCE_METADATA_HOST;
    else process.env.GCE_METADATA_HOST = savedHost;
    await compute?.close();
    await metadata?.close();
  });

  async function call(
    method: string,
    path: string,
    body?: unknown,
    bearer = token,
  ): Promise<{ status: number; json: GoogleError }> {
    const response = await fetch(`${compute.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as GoogleError };
  }

  it('implements only methods of the published API, at their HTTP rule', () => {
    const rules = compute.implemented.map((id) => `${routeById(id).verb} ${routeById(id).template}`);

    expect(rules).toContain('POST /compute/v1/projects/{project}/zones/{zone}/disks/{disk}/createSnapshot');
    expect(rules).toContain('POST /compute/v1/projects/{project}/zones/{zone}/operations/{operation}/wait');
    expect(rules).toContain('POST /compute/v1/projects/{project}/global/snapshots/{resource}/setLabels');
    expect(compute.implemented).toHaveLength(rules.length);
  });

  it('answers the real SDK only with fields and values the API defines, through a whole snapshot life', async () => {
    const volume: Volume = {
      id: `projects/${project}/zones/${zone}/disks/dss-data`,
      mountPoint: '/data',
      relativePath: 'dss',
      fsType: 'xfs',
      attributes: { disk: 'dss-data' },
    };
    const tags = { [TagKey.runId]: '20250131T120000Z-ab12', [TagKey.dataDir]: '/data/dss' };

    const [snapshot] = await provider.createSnapshots([volume], tags);
    await waitForSnapshotsReady(provider, [snapshot!], {
      minDelayMs: 20,
      maxDelayMs: 100,
      deadlineMs: 20_000,
    });
    await provider.retain(snapshot!, { 'dssnap:reason': 'pre-upgrade' });
    const listed = await provider.list({ dataDir: '/data/dss', retained: true });
    await provider.orphans({});
    await provider.ensureDeleted(snapshot!);

    expect(listed.map((s) => s.id)).toEqual([snapshot!.id]);
    expect(compute.calls.filter((c) => c.status >= 400)).toEqual([]);
    expect(compute.drift).toEqual([]);
    expect(new Set(compute.calls.map((c) => c.method))).toEqual(
      new Set([
        'Disks.CreateSnapshot',
        'Snapshots.Get',
        'Snapshots.SetLabels',
        'GlobalOperations.Wait',
        'Snapshots.List',
        'Disks.List',
        'Snapshots.Delete',
      ]),
    );
  });

  it.each([
    [
      'an unknown field in the body',
      'POST',
      `/compute/v1/projects/${project}/zones/${zone}/disks/dss-data/createSnapshot`,
      { name: 'snap-a', sizeGb: '10' },
      400,
      /Invalid JSON payload received\. snapshotResource: unknown field "sizeGb"/,
    ],
    [
      'an unknown query parameter',
      'GET',
      `/compute/v1/projects/${project}/global/snapshots?labelFilter=a`,
      undefined,
      400,
      /Unknown name "labelFilter": Cannot bind query parameter/,
    ],
    [
      'a label with an upper-case key',
      'POST',
      `/compute/v1/projects/${project}/zones/${zone}/disks/dss-data/createSnapshot`,
      { name: 'snap-b', labels: { 'Run-Id': 'x' } },
      400,
      /Label keys must start with a lowercase letter/,
    ],
    [
      'a name that is not RFC 1035',
      'POST',
      `/compute/v1/projects/${project}/zones/${zone}/disks/dss-data/createSnapshot`,
      { name: 'Snap_C' },
      400,
      /Invalid value for field 'resource\.name': 'Snap_C'/,
    ],
    [
      'another zone',
      'GET',
      `/compute/v1/projects/${project}/zones/mars-north1-a/disks/dss-data`,
      undefined,
      400,
      /Unknown zone/,
    ],
    [
      'a missing resource',
      'GET',
      `/compute/v1/projects/${project}/global/snapshots/nope`,
      undefined,
      404,
      /was not found/,
    ],
    [
      'a URL outside the API',
      'GET',
      '/compute/v1/projects/x/bogus',
      undefined,
      404,
      /was not found on this server/,
    ],
  ])('refuses %s as Google does', async (_what, method, path, body, status, message) => {
    const answer = await call(method, path, body);

    expect(answer.status).toBe(status);
    expect(answer.json.error.code).toBe(status);
    expect(answer.json.error.message).toMatch(message);
    expect(answer.json.error.errors[0]?.reason).toEqual(expect.any(String));
  });

  it('refuses a request without a token issued by the metadata server (401)', async () => {
    const answer = await call(
      'GET',
      `/compute/v1/projects/${project}/zones/${zone}/instances/${instance}`,
      undefined,
      'stolen',
    );

    expect(answer.status).toBe(401);
    expect(answer.json.error.status).toBe('UNAUTHENTICATED');
  });

  it.each([
    ['Snapshot', { name: 'a', sizeGb: '1' }, 'Snapshot: unknown field "sizeGb"'],
    ['Snapshot', { status: 'DONE' }, 'Snapshot.status: "DONE" is not one of'],
    ['Operation', { status: 'FINISHED' }, 'Operation.status: "FINISHED" is not one of'],
    ['Disk', { sizeGb: 'ten' }, 'Disk.sizeGb: expected a 64-bit integer'],
    [
      'Instance',
      { disks: [{ mode: 'READ_ONLY', index: '0' }] },
      'Instance.disks[0].index: expected a number',
    ],
  ])('the checker itself flags a %s that drifted: %j', (type, value, problem) => {
    const problems = messageProblems(type, value);

    expect(problems.join('\n')).toContain(problem);
  });

  it('loads the SDK only when the provider first calls the API', async () => {
    const script = `
      import { createRequire } from 'node:module';
      const loaded = () => Object.keys(createRequire(${JSON.stringify(distProvider)}).cache).some((k) => k.includes('@google-cloud/compute'));
      const { createGcpProvider } = await import(${JSON.stringify(distProvider)});
      const provider = createGcpProvider({ stateDir: '/tmp', settings: { apiEndpoint: ${JSON.stringify(compute.url)}, project: '${project}', zone: '${zone}', instance: '${instance}' } });
      const before = loaded();
      await provider.list({});
      console.log(JSON.stringify({ before, after: loaded() }));
    `;

    const result = await execa(process.execPath, ['--input-type=module', '-e', script], {
      env: { GCE_METADATA_HOST: metadata.host },
    });

    expect(JSON.parse(result.stdout)).toEqual({ before: false, after: true });
  });
});
