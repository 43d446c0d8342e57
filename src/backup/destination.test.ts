import { describe, expect, it } from 'vitest';
import { isWithin } from './destination.js';

describe('isWithin', () => {
  it.each([
    ['/data/dss/backups', '/data/dss', true],
    ['/data/dss', '/data/dss', true],
    ['/data/dss/', '/data/dss', true],
    ['/data/dss-backups', '/data/dss', false],
    ['/backups', '/data/dss', false],
    ['/data', '/data/dss', false],
    ['/data/dss/../other', '/data/dss', false],
  ])('%s within %s: %s', (inner, outer, expected) => {
    expect(isWithin(inner, outer)).toBe(expected);
  });
});
