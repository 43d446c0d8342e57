import { describe, expect, it } from 'vitest';
import { DssnapError } from '../errors.js';
import { compareDssVersions, parseDssVersion } from './version.js';

describe('parseDssVersion', () => {
  it.each([
    [
      '{"conf_version": "13040", "product_version": "13.4.2", "product_commitid": "abc123"}',
      { confVersion: 13040, productVersion: '13.4.2', commitId: 'abc123' },
    ],
    ['{"conf_version": "124", "product_version": "12.6.2"}', { confVersion: 124, productVersion: '12.6.2' }],
    ['{"conf_version": 9000, "product_version": " 9.0.4 "}', { confVersion: 9000, productVersion: '9.0.4' }],
  ])('reads %s', (text, expected) => {
    const version = parseDssVersion(text, '/d/dss-version.json');

    expect(version).toEqual(expected);
  });

  it.each([
    ['not json {', /\/d\/dss-version\.json cannot be used: it is not readable JSON/],
    ['[1, 2]', /does not hold a JSON object/],
    ['{"conf_version": "12"}', /has no "product_version" string/],
    ['{"product_version": "12.0.0"}', /"conf_version" is not an integer \(found undefined\)/],
    [
      '{"product_version": "12.0.0", "conf_version": "twelve"}',
      /"conf_version" is not an integer \(found "twelve"\)/,
    ],
  ])('rejects %s with NOT_A_DATA_DIR saying what is wrong', (text, message) => {
    const parse = (): unknown => parseDssVersion(text, '/d/dss-version.json');

    expect(parse).toThrow(DssnapError);
    expect(parse).toThrow(message);
  });
});

describe('compareDssVersions', () => {
  const v = (productVersion: string, confVersion = 100) => ({ productVersion, confVersion });

  it.each([
    [v('12.6.2'), v('13.0.0'), -1],
    [v('13.0.0'), v('12.6.2'), 1],
    [v('12.6.2'), v('12.10.0'), -1],
    [v('12.6'), v('12.6.0'), 0],
    [v('12.6.2'), v('12.6.2'), 0],
    [v('12.6.2', 120), v('12.6.2', 121), -1],
    [v('12.6.2', 122), v('12.6.2', 121), 1],
    [v('13.0.0-beta1', 130), v('13.0.0', 130), 0],
    [v('9.0.4'), v('10.0.0'), -1],
    [v('dev'), v('1.0.0'), -1],
  ])('compares %o with %o as %i', (a, b, expected) => {
    const order = compareDssVersions(a, b);

    expect(order).toBe(expected);
  });
});
