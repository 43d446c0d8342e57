import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  dataDiskControllerId,
  deviceOfLun,
  lunFromSysfs,
  lunOfDisk,
  lunOfEntry,
  partitionOf,
  wholeDisk,
} from './devices.js';

/**
 * A sysfs tree as an Azure VM has it: the OS disk sda behind the VMBus controller of the OS disk, the
 * data disks sdc (LUN 0, partitioned) and sdd (LUN 3) behind the data-disk controller, dm-0 (LVM).
 */
async function fakeSysfs(root: string): Promise<void> {
  const vmbus = join(root, 'devices', 'LNXSYSTM:00', 'VMBUS:00');
  const controllers = {
    os: join(vmbus, 'f8b3781a-1e82-4818-a1c3-63d806ec15bb'),
    data: join(vmbus, 'f8b3781b-1e82-4818-a1c3-63d806ec15bb'),
  };
  await mkdir(controllers.os, { recursive: true });
  await writeFile(join(controllers.os, 'device_id'), '{f8b3781a-1e82-4818-a1c3-63d806ec15bb}\n');
  await mkdir(controllers.data, { recursive: true });
  await writeFile(join(controllers.data, 'device_id'), `${dataDiskControllerId}\n`);
  const disks: Array<[string, string, string, number[]]> = [
    ['sda', controllers.os, '0:0:0:0', []],
    ['sdc', controllers.data, '1:0:0:0', [1]],
    ['sdd', controllers.data, '1:0:0:3', []],
  ];
  await mkdir(join(root, 'class', 'block'), { recursive: true });
  for (const [name, controller, address, partitions] of disks) {
    const scsi = join(controller, `host${address[0]}`, `target${address.slice(0, 5)}`, address);
    const block = join(scsi, 'block', name);
    await mkdir(block, { recursive: true });
    await symlink(scsi, join(block, 'device'));
    await symlink(block, join(root, 'class', 'block', name));
    for (const number of partitions) {
      const part = join(block, `${name}${number}`);
      await mkdir(part, { recursive: true });
      await writeFile(join(part, 'partition'), `${number}\n`);
      await symlink(part, join(root, 'class', 'block', `${name}${number}`));
    }
  }
  const dm = join(root, 'devices', 'virtual', 'block', 'dm-0');
  await mkdir(join(dm, 'dm'), { recursive: true });
  await symlink(dm, join(root, 'class', 'block', 'dm-0'));
}

describe('Azure data disks by LUN', () => {
  let root: string;
  let sys: string;
  let dev: string;
  let links: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'dssnap-azure-devices-'));
    sys = join(root, 'sys');
    dev = join(root, 'dev');
    links = join(dev, 'disk', 'azure', 'scsi1');
    await fakeSysfs(sys);
    await mkdir(links, { recursive: true });
    for (const name of ['sda', 'sdc', 'sdc1', 'sdd', 'dm-0']) await writeFile(join(dev, name), '');
    await symlink(join(dev, 'sdc'), join(links, 'lun0'));
    await symlink(join(dev, 'sdc1'), join(links, 'lun0-part1'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it.each([
    ['lun0', 0],
    ['lun12', 12],
    ['7', 7],
    ['lun0-part1', undefined],
    ['scsi0', undefined],
  ])('entry %s is LUN %s', (name, lun) => {
    expect(lunOfEntry(name)).toBe(lun);
  });

  it.each([
    ['sdc', 0],
    ['sdd', 3],
    ['sda', undefined],
    ['sdx', undefined],
  ])('sysfs gives %s the LUN %s, as the Azure udev rules do', async (name, lun) => {
    expect(await lunFromSysfs(name, sys)).toBe(lun);
  });

  it('finds the whole disk and partition behind a device, and refuses device-mapper', async () => {
    expect(await wholeDisk(join(dev, 'sdc1'), sys)).toEqual({ disk: '/dev/sdc', partition: 1 });
    expect(await wholeDisk(join(dev, 'sdd'), sys)).toEqual({ disk: '/dev/sdd' });
    await expect(wholeDisk(join(dev, 'dm-0'), sys)).rejects.toMatchObject({ code: 'UNSUPPORTED' });
  });

  it('maps disks to LUNs and back: symlinks first, then sysfs', async () => {
    const lookup = { deviceDirs: [links], sysRoot: sys };

    expect(await lunOfDisk(join(dev, 'sdc'), lookup)).toBe(0);
    expect(await lunOfDisk(join(dev, 'sdd'), lookup)).toBe(3);
    expect(await deviceOfLun(0, lookup)).toBe(join(dev, 'sdc'));
    expect(await deviceOfLun(3, lookup)).toBe('/dev/sdd');
    expect(await deviceOfLun(5, lookup)).toBeUndefined();
  });

  it('finds a partition of a disk by number', async () => {
    expect(await partitionOf(join(dev, 'sdc'), 1, sys)).toBe('/dev/sdc1');
    expect(await partitionOf(join(dev, 'sdc'), 2, sys)).toBeUndefined();
  });
});
