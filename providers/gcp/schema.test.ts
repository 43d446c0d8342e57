import { describe, expect, it } from 'vitest';
import { createGcpProvider } from './index.js';
import { parseApiEndpoint, resolveSettings, settingsSchema } from './schema.js';

describe('gcp settings', () => {
  it.each([
    ['compute.googleapis.com', { apiEndpoint: 'compute.googleapis.com' }],
    ['http://127.0.0.1:8080', { apiEndpoint: '127.0.0.1', port: 8080, protocol: 'http' }],
    [
      'https://compute.example.internal',
      { apiEndpoint: 'compute.example.internal', port: 443, protocol: 'https' },
    ],
  ])(
    'apiEndpoint %j reaches the SDK as %j (the SDK ignores a port inside apiEndpoint)',
    (value, expected) => {
      const endpoint = parseApiEndpoint(value);

      expect(endpoint).toEqual(expected);
    },
  );

  it.each([
    [{}, {}, 'http://metadata.google.internal'],
    [{}, { GCE_METADATA_HOST: '127.0.0.1:9000' }, 'http://127.0.0.1:9000'],
    [
      { metadataEndpoint: 'http://10.0.0.1:80/' },
      { GCE_METADATA_HOST: '127.0.0.1:9000' },
      'http://10.0.0.1:80',
    ],
  ])('settings %j with environment %j read the metadata server at %s', (settings, env, expected) => {
    const resolved = resolveSettings(settingsSchema.parse(settings), env);

    expect(resolved.metadataUrl).toBe(expected);
  });

  it('disks take a name, or a name and the mount point of a disk below DATA_DIR', () => {
    const resolved = resolveSettings(
      settingsSchema.parse({ disks: ['dss-data', 'dss-datasets=/data/dss/managed_datasets/'] }),
      {},
    );

    expect(resolved.disks).toEqual([
      { disk: 'dss-data' },
      { disk: 'dss-datasets', mountPoint: '/data/dss/managed_datasets' },
    ]);
  });

  it.each([
    [
      { zone: 'europe-west1-b', bogus: 1 },
      /unknown setting\(s\) 'bogus' \(valid: project, zone, instance, disks/,
    ],
    [
      { disks: ['Data_Disk'] },
      /setting 'disks\.0' = "Data_Disk": must be 'disk-name' or 'disk-name=\/mount\/point'/,
    ],
    [{ zone: 'europe' }, /setting 'zone' = "europe": must be a zone like europe-west1-b/],
    [{ attachMode: 'SHARED' }, /setting 'attachMode' = "SHARED"/],
    [{ pollInterval: 'soon' }, /setting 'pollInterval' = "soon": not a duration/],
  ])('%j is refused: %s', (settings, message) => {
    const build = () => createGcpProvider({ stateDir: '/tmp', settings });

    expect(build).toThrow(message);
  });

  it('declares exactly the IAM permissions of its attach mode', () => {
    const actions = (attachMode: string) =>
      createGcpProvider({ stateDir: '/tmp', settings: { attachMode } }).permissions.map((p) => p.action);

    expect(actions('READ_WRITE')).toContain('compute.disks.use');
    expect(actions('READ_WRITE')).not.toContain('compute.disks.useReadOnly');
    expect(actions('READ_ONLY')).toContain('compute.disks.useReadOnly');
    for (const action of actions('READ_WRITE')) expect(action).toMatch(/^compute\.[a-zA-Z]+\.[a-zA-Z]+$/);
  });

  it('defaults to fsfreeze; a READ_ONLY attachment allows nothing else', () => {
    const readWrite = createGcpProvider({ stateDir: '/tmp' });
    const readOnly = createGcpProvider({ stateDir: '/tmp', settings: { attachMode: 'READ_ONLY' } });

    expect(readWrite.defaultQuiesce).toBe('fsfreeze');
    expect(readWrite.supportedQuiesce).toEqual({ fsfreeze: true, stop: true, none: true });
    expect(readOnly.supportedQuiesce.fsfreeze).toBe(true);
    expect(readOnly.supportedQuiesce.none).toMatch(/journal/);
    expect(readOnly.supportedQuiesce.stop).toMatch(/journal/);
  });
});
