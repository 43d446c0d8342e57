/**
 * Whether this kernel lets `lvcreate -s` snapshot a filesystem that userspace froze (fsfreeze). Before
 * Linux 6.8 it does not: device-mapper's own freeze of the origin fails with EBUSY and LVM stops half-way
 * ("Manual intervention required"), so several LVs cannot be frozen together around their snapshots.
 * Since 6.8 a block-device freeze nests inside a userspace one (FREEZE_MAY_NEST). Pure.
 */
import { release } from 'node:os';

export const nestedFreezeSince = { major: 6, minor: 8 } as const;

/** True when `kernelRelease` (`uname -r`, e.g. `6.1.0-56-amd64`) is Linux 6.8 or later. */
export function supportsNestedFreeze(kernelRelease: string = release()): boolean {
  const match = /^(\d+)\.(\d+)/.exec(kernelRelease);
  if (!match) return false;
  const major = Number(match[1]);
  const minor = Number(match[2]);
  return (
    major > nestedFreezeSince.major || (major === nestedFreezeSince.major && minor >= nestedFreezeSince.minor)
  );
}
