/**
 * Every Azure RBAC action the provider calls, with why (`dssnap doctor --provider azure`, README, and
 * the least-privilege role in terraform-examples). Scope: the resource group of the VM and of the
 * snapshots; the ARM fake in the tests refuses any other action.
 */
import type { Permission } from '../../src/provider/types.js';

export const azurePermissions: readonly Permission[] = [
  {
    action: 'Microsoft.Compute/virtualMachines/read',
    reason: 'find a free LUN on this VM and see what is attached',
  },
  {
    action: 'Microsoft.Compute/virtualMachines/attachDetachDataDisks/action',
    reason: 'attach the temporary disk made from a snapshot to this VM, and detach it',
  },
  { action: 'Microsoft.Compute/disks/read', reason: 'read the temporary disks; list them for cleanup' },
  { action: 'Microsoft.Compute/disks/write', reason: 'create the temporary disk from a snapshot' },
  { action: 'Microsoft.Compute/disks/delete', reason: 'delete the temporary disk' },
  {
    action: 'Microsoft.Compute/snapshots/read',
    reason: 'follow a snapshot until it is usable; list snapshots by tag',
  },
  {
    action: 'Microsoft.Compute/snapshots/write',
    reason: 'create snapshots of the data disks; tag retained ones',
  },
  {
    action: 'Microsoft.Compute/snapshots/delete',
    reason: 'delete snapshots after the copy, in cleanup and retention',
  },
  {
    action: 'Microsoft.Compute/locations/DiskOperations/read',
    reason: 'follow the long-running disk and snapshot operations',
  },
  {
    action: 'Microsoft.Compute/locations/operations/read',
    reason: 'follow the long-running attach and detach',
  },
];
