/**
 * Azure data disks on this host, by LUN. The udev rules of the Azure Linux agent (and azure-vm-utils)
 * make `/dev/disk/azure/scsi1/lun<N>` (and `/dev/disk/azure/data/by-lun/<N>`) symlinks; without them
 * (NVMe sizes lack them, DESIGN.md §4b) the LUN is read as those rules do: the last field of the
 * disk's SCSI address `H:C:T:L`, for disks behind the VMBus SCSI controller of data disks.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DssnapError } from '../../src/errors.js';

export const defaultDeviceDirs = ['/dev/disk/azure/scsi1', '/dev/disk/azure/data/by-lun'];

/** VMBus device id of the SCSI controller that holds the data disks (the udev rules' `scsi1`). */
export const dataDiskControllerId = '{f8b3781b-1e82-4818-a1c3-63d806ec15bb}';

export interface DeviceLookup {
  /** Directories of LUN symlinks, searched in order. */
  deviceDirs: readonly string[];
  /** sysfs root; tests point it at a fake tree. Default /sys. */
  sysRoot?: string;
}

export interface BlockDevice {
  /** The whole disk, e.g. /dev/sdc. */
  disk: string;
  /** Partition number when the filesystem is on a partition (/dev/sdc1 → 1). */
  partition?: number;
}

/** LUN of an entry name in a device dir: `lun3` or `3`; undefined for `lun3-part1` and others. */
export function lunOfEntry(name: string): number | undefined {
  const match = /^(?:lun)?(\d+)$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

/**
 * The whole disk and partition number behind `device` (/dev/sdc1 → /dev/sdc, 1). Throws UNSUPPORTED
 * for device-mapper devices (LVM, RAID, LUKS spanning or wrapping disks). Changes nothing.
 */
export async function wholeDisk(device: string, sysRoot = '/sys'): Promise<BlockDevice> {
  const name = basename(await realpath(device));
  const classDir = join(sysRoot, 'class', 'block', name);
  if (existsSync(join(classDir, 'dm'))) {
    throw new DssnapError(
      'UNSUPPORTED',
      `${device} is a device-mapper device (LVM, RAID or encryption): an Azure disk snapshot would not hold it whole`,
      {
        hint: 'Put DATA_DIR on a filesystem made directly on an Azure data disk (or a partition of one), or use --mode cold.',
        details: { device },
      },
    );
  }
  const partitionFile = join(classDir, 'partition');
  if (!existsSync(partitionFile)) return { disk: `/dev/${name}` };
  const partition = Number((await readFile(partitionFile, 'utf8')).trim());
  const parent = basename(dirname(await realpath(classDir)));
  return { disk: `/dev/${parent}`, partition };
}

/**
 * The LUN of the whole disk `disk` (/dev/sdc): from the symlinks in the device dirs, else from sysfs.
 * Returns undefined when it is not an Azure data disk. Changes nothing.
 */
export async function lunOfDisk(disk: string, lookup: DeviceLookup): Promise<number | undefined> {
  const target = await realpath(disk);
  for (const dir of lookup.deviceDirs) {
    for (const entry of await readdir(dir).catch(() => [] as string[])) {
      const lun = lunOfEntry(entry);
      if (lun === undefined) continue;
      if ((await realpath(join(dir, entry)).catch(() => '')) === target) return lun;
    }
  }
  return lunFromSysfs(basename(target), lookup.sysRoot ?? '/sys');
}

/**
 * The device of the data disk at `lun`, or undefined when none is there (yet). Symlinks first, then
 * sysfs. Changes nothing.
 */
export async function deviceOfLun(lun: number, lookup: DeviceLookup): Promise<string | undefined> {
  for (const dir of lookup.deviceDirs) {
    for (const name of [`lun${lun}`, String(lun)]) {
      const path = join(dir, name);
      if (existsSync(path)) return realpath(path).catch(() => undefined);
    }
  }
  const sysRoot = lookup.sysRoot ?? '/sys';
  for (const name of await readdir(join(sysRoot, 'class', 'block')).catch(() => [] as string[])) {
    if (existsSync(join(sysRoot, 'class', 'block', name, 'partition'))) continue;
    if ((await lunFromSysfs(name, sysRoot)) === lun) return `/dev/${name}`;
  }
  return undefined;
}

/** The device of partition `number` of `disk` (/dev/sdc, 1 → /dev/sdc1), or undefined if not (yet) there. */
export async function partitionOf(
  disk: string,
  number: number,
  sysRoot = '/sys',
): Promise<string | undefined> {
  const name = basename(await realpath(disk));
  const classDir = join(sysRoot, 'class', 'block', name);
  for (const child of await readdir(classDir).catch(() => [] as string[])) {
    const file = join(classDir, child, 'partition');
    if (!existsSync(file)) continue;
    if (Number((await readFile(file, 'utf8')).trim()) === number) return `/dev/${child}`;
  }
  return undefined;
}

/**
 * The LUN of block device `name` (sdc) as the Azure udev rules compute it: the disk's SCSI address is
 * the basename of `/sys/class/block/<name>/device` (`H:C:T:L`); it is a data disk when one of the
 * device's ancestors is the VMBus controller whose `device_id` is the data-disk controller's.
 */
export async function lunFromSysfs(name: string, sysRoot = '/sys'): Promise<number | undefined> {
  const deviceLink = join(sysRoot, 'class', 'block', name, 'device');
  const device = await realpath(deviceLink).catch(() => undefined);
  if (!device) return undefined;
  const address = /^\d+:\d+:\d+:(\d+)$/.exec(basename(device));
  if (!address) return undefined;
  for (let dir = dirname(device); dir.length > sysRoot.length; dir = dirname(dir)) {
    const id = await readFile(join(dir, 'device_id'), 'utf8').catch(() => undefined);
    if (id === undefined) continue;
    return id.trim().toLowerCase() === dataDiskControllerId ? Number(address[1]) : undefined;
  }
  return undefined;
}
