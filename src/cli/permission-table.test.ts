import { describe, expect, it } from 'vitest';
import { formatPermissionTable, permissionRows } from './permission-table.js';

const permissions = [
  { action: 'Microsoft.Compute/snapshots/read', reason: 'follow a snapshot; list snapshots by tag' },
  { action: 'Microsoft.Compute/disks/delete', reason: 'delete the temporary disk' },
];

describe('doctor --permissions table', () => {
  it('reads one check per action (aws DryRun, gcp testIamPermissions)', () => {
    const rows = permissionRows(
      [
        { action: 'ec2:CreateSnapshot', reason: 'snapshot' },
        { action: 'ec2:CreateTags', reason: 'tag' },
        { action: 'ec2:DeleteVolume', reason: 'delete' },
        { action: 'ec2:DescribeVolumes', reason: 'locate' },
      ],
      [
        { name: 'iam ec2:CreateSnapshot', ok: true, detail: 'allowed (DryRun)' },
        { name: 'iam ec2:CreateTags', ok: true, detail: 'not decided by DryRun (InvalidSnapshot.NotFound)' },
        { name: 'iam ec2:DeleteVolume', ok: false, detail: 'DENIED (UnauthorizedOperation)' },
      ],
    );

    expect(rows.map((r) => [r.action, r.status, r.detail])).toEqual([
      ['ec2:CreateSnapshot', 'allowed', undefined],
      ['ec2:CreateTags', 'unknown', 'not decided by DryRun (InvalidSnapshot.NotFound)'],
      ['ec2:DeleteVolume', 'denied', 'DENIED (UnauthorizedOperation)'],
      ['ec2:DescribeVolumes', 'unknown', 'not checked'],
    ]);
  });

  it('reads a per-scope check listing what is missing (azure), even with ";" inside a reason', () => {
    const rows = permissionRows(permissions, [
      { name: 'azure permissions (rg-a)', ok: true, detail: 'all 2 actions allowed' },
      {
        name: 'azure permissions (rg-b)',
        ok: false,
        detail: 'missing: Microsoft.Compute/disks/delete (delete the temporary disk)',
      },
    ]);

    expect(rows.map((r) => [r.status, r.detail])).toEqual([
      ['allowed', undefined],
      ['denied', 'azure permissions (rg-b)'],
    ]);
  });

  it('says unknown, and why, when the cloud could not be asked', () => {
    const rows = permissionRows(permissions, [
      { name: 'azure permissions (rg-a)', ok: false, detail: 'ARM unreachable' },
    ]);

    expect(rows.every((r) => r.status === 'unknown')).toBe(true);
    expect(formatPermissionTable('azure', rows)).toBe(
      [
        'Permissions of the azure provider (2):',
        '',
        'ACTION                            STATUS   WHY',
        'Microsoft.Compute/snapshots/read  unknown  follow a snapshot; list snapshots by tag',
        'Microsoft.Compute/disks/delete    unknown  delete the temporary disk',
        '',
        'Microsoft.Compute/snapshots/read: azure permissions (rg-a): ARM unreachable',
        'Microsoft.Compute/disks/delete: azure permissions (rg-a): ARM unreachable',
        '',
      ].join('\n'),
    );
  });
});
