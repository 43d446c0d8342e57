/**
 * Every IAM permission the gcp provider needs, and why: the VM's service account needs exactly these
 * (the Terraform example grants them as a custom role; `dssnap doctor --provider gcp` tests each with
 * Cloud Resource Manager's `projects.testIamPermissions`).
 */
import type { Permission } from '../../src/provider/types.js';

/** The permissions, for an attach mode (a READ_ONLY attachment needs `useReadOnly`, READ_WRITE `use`). */
export function gcpPermissions(attachMode: 'READ_ONLY' | 'READ_WRITE'): readonly Permission[] {
  return [
    {
      action: 'compute.instances.get',
      reason: 'locate: the disks attached to this VM and their device names',
    },
    { action: 'compute.disks.get', reason: 'find who uses a temporary disk before releasing it' },
    { action: 'compute.disks.createSnapshot', reason: 'snapshot the disk(s) behind DATA_DIR' },
    { action: 'compute.snapshots.create', reason: 'the snapshot resource itself' },
    { action: 'compute.snapshots.setLabels', reason: 'label snapshots at creation, and mark one retained' },
    { action: 'compute.snapshots.get', reason: 'snapshot status (CREATING, UPLOADING, READY, FAILED)' },
    {
      action: 'compute.snapshots.list',
      reason: 'list retained snapshots and what a failed run left, by label',
    },
    { action: 'compute.snapshots.delete', reason: 'delete the run snapshot after the copy, or a leftover' },
    {
      action: 'compute.snapshots.useReadOnly',
      reason: 'create a temporary disk from the snapshot, to read it',
    },
    { action: 'compute.disks.create', reason: 'the temporary disk made from the snapshot' },
    { action: 'compute.disks.setLabels', reason: 'label the temporary disk at creation' },
    { action: 'compute.disks.list', reason: 'find temporary disks a failed run left, by label' },
    {
      action: attachMode === 'READ_ONLY' ? 'compute.disks.useReadOnly' : 'compute.disks.use',
      reason: `attach the temporary disk to this VM (${attachMode})`,
    },
    { action: 'compute.instances.attachDisk', reason: 'attach the temporary disk to this VM' },
    { action: 'compute.instances.detachDisk', reason: 'detach the temporary disk after the copy' },
    { action: 'compute.disks.delete', reason: 'delete the temporary disk' },
    {
      action: 'compute.zoneOperations.get',
      reason: 'wait for zonal operations (snapshot, disk, attach, detach)',
    },
    {
      action: 'compute.globalOperations.get',
      reason: 'wait for global operations (snapshot labels, delete)',
    },
  ];
}
