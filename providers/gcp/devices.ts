/**
 * Where Compute Engine disks appear on the VM: the guest environment's udev rules link every attached
 * disk as `/dev/disk/by-id/google-<device name>` (a partition as `google-<device name>-partN`), for SCSI
 * and NVMe alike. The device name is chosen when the disk is attached; dssnap names its own.
 */
import { existsSync } from 'node:fs';
import { readdir, realpath } from 'node:fs/promises';
import { join } from 'node:path';

export const googleLinkPrefix = 'google-';

export interface DeviceLink {
  deviceName: string;
  /** The partition holding the filesystem; absent for a whole-disk filesystem. */
  partition?: number;
}

/** `google-dss-data-part1` → `{ deviceName: 'dss-data', partition: 1 }`; undefined for other links. */
export function parseGoogleLink(name: string): DeviceLink | undefined {
  const match = /^google-([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)$/.exec(name);
  if (!match) return undefined;
  const partition = /^(.*)-part(\d+)$/.exec(match[1]!);
  return partition
    ? { deviceName: partition[1]!, partition: Number(partition[2]) }
    : { deviceName: match[1]! };
}

/** The link an attached disk (or one of its partitions) appears as. */
export function googleLinkPath(deviceDir: string, link: DeviceLink): string {
  return join(
    deviceDir,
    `${googleLinkPrefix}${link.deviceName}${link.partition === undefined ? '' : `-part${link.partition}`}`,
  );
}

/**
 * The Compute Engine device behind `device` (a mounted filesystem's source), from the `google-*` links
 * under `deviceDir`; undefined when none points at it (LVM, RAID, a local SSD…). Changes nothing.
 */
export async function googleLinkOf(device: string, deviceDir: string): Promise<DeviceLink | undefined> {
  const real = await realpath(device).catch(() => device);
  for (const name of (await readdir(deviceDir).catch(() => [] as string[])).sort()) {
    const link = parseGoogleLink(name);
    if (!link) continue;
    if ((await realpath(join(deviceDir, name)).catch(() => undefined)) === real) return link;
  }
  return undefined;
}

/** The links of one device name (the disk and its partitions) that exist now. */
export async function linksOf(deviceDir: string, deviceName: string): Promise<string[]> {
  const names = await readdir(deviceDir).catch(() => [] as string[]);
  return names
    .filter((name) => parseGoogleLink(name)?.deviceName === deviceName)
    .map((name) => join(deviceDir, name))
    .filter((path) => existsSync(path));
}
