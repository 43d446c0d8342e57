/**
 * Every EC2 action the aws provider calls, and why: the instance role needs exactly these (the
 * Terraform example grants them, `dssnap doctor --provider aws` checks each with DryRun).
 */
import type { Permission } from '../../src/provider/types.js';

export const awsPermissions: readonly Permission[] = [
  {
    action: 'ec2:DescribeVolumes',
    reason:
      'locate: check the volumes behind DATA_DIR are attached here; wait for temporary volumes; find orphans by tag',
  },
  {
    action: 'ec2:DescribeInstances',
    reason:
      'the block device mappings of this instance: a free device name, the volumes a multi-volume set excludes',
  },
  { action: 'ec2:CreateSnapshot', reason: 'snapshot the one volume holding DATA_DIR' },
  { action: 'ec2:CreateSnapshots', reason: 'snapshot several volumes as one crash-consistent set' },
  {
    action: 'ec2:CreateTags',
    reason: 'tag snapshots and volumes at creation (TagSpecifications), and mark a snapshot retained',
  },
  {
    action: 'ec2:DescribeSnapshots',
    reason: 'snapshot progress; list retained snapshots and orphans by tag',
  },
  {
    action: 'ec2:DeleteSnapshot',
    reason: 'delete the run snapshot after the copy, or what a failed run left',
  },
  { action: 'ec2:CreateVolume', reason: 'a temporary volume from the snapshot, to read it' },
  { action: 'ec2:AttachVolume', reason: 'attach the temporary volume to this instance' },
  { action: 'ec2:DetachVolume', reason: 'detach the temporary volume after the copy' },
  { action: 'ec2:DeleteVolume', reason: 'delete the temporary volume' },
];
