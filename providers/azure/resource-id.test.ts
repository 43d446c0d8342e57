import { describe, expect, it } from 'vitest';
import { formatResourceId, parseResourceId, resourceName, sameResource } from './resource-id.js';

const disk = '/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/disks/data0';

describe('ARM resource ids', () => {
  it.each([
    [disk, { subscription: 's1', resourceGroup: 'rg1', type: 'disks', name: 'data0' }],
    [
      'subscriptions/s1/resourcegroups/RG1/providers/microsoft.compute/SNAPSHOTS/snap',
      { subscription: 's1', resourceGroup: 'RG1', type: 'snapshots', name: 'snap' },
    ],
    [
      '/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm',
      { subscription: 's1', resourceGroup: 'rg1', type: 'virtualMachines', name: 'vm' },
    ],
  ])('parses %s', (id, expected) => {
    const parsed = parseResourceId(id);

    expect(parsed).toEqual(expected);
  });

  it.each([
    ['/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/x', undefined],
    ['data0', undefined],
    [disk, 'snapshots' as const],
  ])('refuses %s (expected type %s) with a hint', (id, expected) => {
    const parsing = () => parseResourceId(id, expected);

    expect(parsing).toThrow(/is not the resource id of/);
  });

  it('formats back to the canonical id and compares case-insensitively', () => {
    const canonical = formatResourceId(parseResourceId(disk.toLowerCase()));

    expect(canonical).toBe(
      disk
        .toLowerCase()
        .replace('resourcegroups', 'resourceGroups')
        .replace('microsoft.compute', 'Microsoft.Compute'),
    );
    expect(sameResource(disk, disk.toUpperCase())).toBe(true);
    expect(sameResource(disk, `${disk}x`)).toBe(false);
    expect(sameResource(disk, undefined)).toBe(false);
  });

  it.each([
    ['dssnap', 'data0', '20260101T000000Z-abc123', 'dssnap-data0-20260101T000000Z-abc123'],
    ['dssnap', 'x'.repeat(200), 'suffix', `dssnap-${'x'.repeat(66)}-suffix`],
    ['', 'disk with spaces!', 'x1', 'disk-with-spaces-x1'],
    ['dssnap', '---', 'end.', 'dssnap-end'],
  ])('builds a valid ARM name from (%s, %s, %s)', (prefix, middle, suffix, expected) => {
    const name = resourceName(prefix, middle, suffix);

    expect(name).toBe(expected);
    expect(name.length).toBeLessThanOrEqual(80);
    expect(name).toMatch(/^[A-Za-z0-9][A-Za-z0-9_.-]*[A-Za-z0-9_]$/);
  });
});
