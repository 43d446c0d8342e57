import { describe, expect, it } from 'vitest';
import { TagKey } from '../../src/provider/types.js';
import {
  describeResource,
  labelFilter,
  labelKey,
  labelValue,
  readResource,
  resourceName,
  toLabels,
} from './labels.js';

// GCP's label rules: keys start with a lower-case letter; keys and values hold only lower-case letters,
// digits, '_' and '-'; at most 63 characters each.
const validKey = /^[a-z][a-z0-9_-]{0,62}$/;
const validValue = /^[a-z0-9_-]{0,63}$/;
const long = `/data/${'very-long-directory-name/'.repeat(5)}dss`;

describe('GCP labels', () => {
  it.each([
    ['dssnap:run-id', 'dssnap-run-id'],
    ['dssnap:data-dir', 'dssnap-data-dir'],
    ['Dssnap:Created-At', 'dssnap-created-at'],
    ['cost.center', 'cost-center'],
    ['1st', 'k-1st'],
    ['_private', 'k-_private'],
  ])('key %j becomes %j', (tagKey, expected) => {
    const key = labelKey(tagKey);

    expect(key).toBe(expected);
    expect(key).toMatch(validKey);
  });

  it.each([
    ['/data/dss', '_data_dss'],
    ['20250131T120000Z-ab12', '20250131t120000z-ab12'],
    ['2025-01-31T12:00:00.123Z', '2025-01-31t12_00_00_123z'],
    ['Pre Upgrade!', 'pre_upgrade_'],
    ['été', '_t_'],
    ['true', 'true'],
    ['', ''],
  ])('value %j becomes %j', (value, expected) => {
    const label = labelValue(value);

    expect(label).toBe(expected);
    expect(label).toMatch(validValue);
  });

  it.each([
    ['a key', () => labelKey(`dssnap:${'x'.repeat(80)}`), validKey],
    ['a value', () => labelValue(long), validValue],
  ])(
    '%s longer than 63 characters is cut to 63 and ends with a hash of the whole',
    (_what, make, pattern) => {
      const label = make();

      expect(label).toHaveLength(63);
      expect(label).toMatch(pattern);
      expect(label).toMatch(/-[0-9a-f]{8}$/);
    },
  );

  it('two long values that differ only at the end get different labels', () => {
    const first = labelValue(`${long}/one`);
    const second = labelValue(`${long}/two`);

    expect(first).not.toBe(second);
  });

  it('toLabels makes every tag a valid label', () => {
    const tags = {
      [TagKey.runId]: '20250131T120000Z-ab12',
      [TagKey.dataDir]: long,
      [TagKey.role]: 'snapshot',
      [TagKey.createdAt]: '2025-01-31T12:00:00.123Z',
    };

    const labels = toLabels(tags);

    expect(Object.keys(labels)).toEqual([
      'dssnap-run-id',
      'dssnap-data-dir',
      'dssnap-role',
      'dssnap-created-at',
    ]);
    for (const [key, value] of Object.entries(labels)) {
      expect(key).toMatch(validKey);
      expect(value).toMatch(validValue);
    }
  });

  it('the exact tags come back from the description, with labels set later on top', () => {
    const tags = { [TagKey.runId]: '20250131T120000Z-ab12', [TagKey.dataDir]: '/Data/DSS' };
    const labels = { ...toLabels(tags), 'dssnap-retain': 'true', team: 'ml' };

    const read = readResource(describeResource(tags, { fsType: 'xfs' }), labels);

    expect(read.tags).toEqual({ ...tags, [TagKey.retain]: 'true' });
    expect(read.attributes).toEqual({ fsType: 'xfs' });
  });

  it('a label changed after creation wins over the recorded tag', () => {
    const tags = { [TagKey.retain]: 'false' };

    const read = readResource(describeResource(tags), { 'dssnap-retain': 'true' });

    expect(read.tags[TagKey.retain]).toBe('true');
  });

  it.each([
    ['no description', undefined],
    ['a description of its own', 'Nightly snapshot of the DSS disk'],
    ['JSON that is not dssnap’s', '{"tags":{"a":"b"}}'],
  ])('with %s, the tags are the dssnap labels', (_what, description) => {
    const read = readResource(description, { 'dssnap-run-id': 'r1', 'dssnap-role': 'snapshot', team: 'ml' });

    expect(read.tags).toEqual({ [TagKey.runId]: 'r1', [TagKey.role]: 'snapshot' });
  });

  it('labelFilter matches every label exactly, in Compute filter syntax', () => {
    const filter = labelFilter({ [TagKey.role]: 'snapshot', [TagKey.runId]: '20250131T120000Z-ab12' });

    expect(filter).toBe('(labels.dssnap-role = "snapshot") (labels.dssnap-run-id = "20250131t120000z-ab12")');
  });

  it.each([
    [['20250131T120000Z-ab12', 'dss-data'], 'a/b'],
    [['x', long], 'c/d'],
    [['UPPER case', '__'], 'e'],
  ])('resourceName(%j) is a valid Compute Engine name, the same for the same input', (parts, unique) => {
    const name = resourceName(parts, unique);

    expect(name).toMatch(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/);
    expect(resourceName(parts, unique)).toBe(name);
    expect(resourceName(parts, `${unique}-other`)).not.toBe(name);
  });
});
