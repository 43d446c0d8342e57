/**
 * Which EBS volume is behind a block device, and where an attached volume appears on this host.
 * Nitro instances expose EBS volumes as NVMe disks whose serial is the volume id without its dash
 * (`vol0123…`); udev links them as `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123…`. Xen
 * instances name them after the attachment (`/dev/sdf` appears as `/dev/xvdf`).
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, realpath } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { run } from '../../src/host/exec.js';

export type DeviceNaming = 'nvme' | 'xen';

export const nvmeLinkPrefix = 'nvme-Amazon_Elastic_Block_Store_';

/** `vol-0123abcd…` → the by-id link name of its NVMe disk. */
export function nvmeLinkName(volumeId: string): string {
  return `${nvmeLinkPrefix}${volumeId.replace('-', '')}`;
}

/** A by-id link name → its volume id and partition; undefined for other links. */
export function parseNvmeLinkName(name: string): { volumeId: string; partition?: number } | undefined {
  const match = /^nvme-Amazon_Elastic_Block_Store_vol([0-9a-f]{8,17})(?:_\d+)?(?:-part(\d+))?$/.exec(name);
  if (!match) return undefined;
  return match[2]
    ? { volumeId: `vol-${match[1]}`, partition: Number(match[2]) }
    : { volumeId: `vol-${match[1]}` };
}

/** An NVMe serial as lsblk prints it (`vol0123…`, sometimes `vol-0123…`) → the volume id. */
export function volumeIdFromSerial(serial: string | null | undefined): string | undefined {
  const match = /^vol-?([0-9a-f]{8,17})$/.exec((serial ?? '').trim());
  return match ? `vol-${match[1]}` : undefined;
}

/** `/dev/sdf`, `sdf`, `/dev/xvdf`, `xvdf` → `sdf` (the letters EC2 and the kernel agree on). */
export function deviceLetters(name: string): string {
  return basename(name).replace(/^xvd/, 'sd');
}

/** The Xen device paths an attachment named `deviceName` may appear as. */
export function xenDevicePaths(deviceName: string): string[] {
  const letters = deviceLetters(deviceName).replace(/^sd/, '');
  return [`/dev/xvd${letters}`, `/dev/sd${letters}`];
}

/** Device names EC2 recommends for data volumes on Linux, in the order they are tried. */
export const candidateDeviceNames = 'fghijklmnop'.split('').map((letter) => `/dev/sd${letter}`);

/** The first candidate device name not in `used` (compared as `sdX`, so `xvdf` blocks `/dev/sdf`). */
export function freeDeviceNames(used: readonly string[]): string[] {
  const taken = new Set(used.map(deviceLetters));
  return candidateDeviceNames.filter((name) => !taken.has(deviceLetters(name)));
}

export interface DeviceIdentity {
  volumeId: string;
  naming: DeviceNaming;
  /** The partition of the volume holding the filesystem; absent for a whole-disk filesystem. */
  partition?: number;
}

/**
 * The EBS volume behind `device` (a mounted filesystem's source), from the by-id links under
 * `deviceDir`, else from the NVMe serial (lsblk). Undefined when neither names one (Xen instances: the
 * caller matches attachment names). Changes nothing.
 */
export async function volumeOfDevice(device: string, deviceDir: string): Promise<DeviceIdentity | undefined> {
  const real = await realpath(device).catch(() => device);
  const { disk, partition } = await diskOf(real);
  for (const name of await readdir(deviceDir).catch(() => [] as string[])) {
    const parsed = parseNvmeLinkName(name);
    if (!parsed || parsed.partition !== undefined) continue;
    const target = await realpath(join(deviceDir, name)).catch(() => undefined);
    if (target === disk) return withPartition({ volumeId: parsed.volumeId, naming: 'nvme' }, partition);
  }
  const serial = await lsblkSerial(disk);
  const volumeId = volumeIdFromSerial(serial);
  return volumeId ? withPartition({ volumeId, naming: 'nvme' }, partition) : undefined;
}

function withPartition(identity: DeviceIdentity, partition: number | undefined): DeviceIdentity {
  return partition === undefined ? identity : { ...identity, partition };
}

/** `/dev/nvme1n1p2` → `{ disk: /dev/nvme1n1, partition: 2 }`, from sysfs; a whole disk is itself. */
export async function diskOf(device: string): Promise<{ disk: string; partition?: number }> {
  const name = basename(device);
  const partitionFile = `/sys/class/block/${name}/partition`;
  if (!existsSync(partitionFile)) return { disk: device };
  const partition = Number((await readFile(partitionFile, 'utf8')).trim());
  const parent = basename(join(await realpath(`/sys/class/block/${name}`), '..'));
  return { disk: `/dev/${parent}`, partition };
}

async function lsblkSerial(disk: string): Promise<string | undefined> {
  try {
    const { stdout } = await run('lsblk', ['-J', '-d', '-o', 'NAME,SERIAL,MODEL', disk]);
    return parseLsblkSerial(stdout);
  } catch {
    return undefined;
  }
}

/** The SERIAL of the first device in `lsblk -J -d -o NAME,SERIAL,MODEL` output, if it is an EBS disk. */
export function parseLsblkSerial(stdout: string): string | undefined {
  const parsed = JSON.parse(stdout) as {
    blockdevices?: Array<{ serial?: string | null; model?: string | null }>;
  };
  const device = parsed.blockdevices?.[0];
  if (!device?.serial) return undefined;
  if (device.model && !/Elastic Block Store/i.test(device.model)) return undefined;
  return device.serial.trim();
}

/**
 * Where an attached volume appears on this host, or undefined while it has not appeared yet. NVMe:
 * its by-id link (plus `-partN`); Xen: `/dev/xvdX` or `/dev/sdX` from the attachment name.
 */
export function attachedDevicePath(options: {
  volumeId: string;
  naming: DeviceNaming;
  deviceDir: string;
  deviceName?: string;
  partition?: number;
}): string | undefined {
  const suffix =
    options.partition === undefined
      ? ''
      : options.naming === 'nvme'
        ? `-part${options.partition}`
        : String(options.partition);
  const candidates =
    options.naming === 'nvme'
      ? [join(options.deviceDir, nvmeLinkName(options.volumeId))]
      : options.deviceName
        ? xenDevicePaths(options.deviceName)
        : [];
  for (const candidate of candidates) {
    if (existsSync(`${candidate}${suffix}`)) return `${candidate}${suffix}`;
  }
  return undefined;
}

/** The mount points of `device` (any partition of it counts only if given itself). Changes nothing. */
export async function mountPointsOf(device: string): Promise<string[]> {
  const real = await realpath(device).catch(() => undefined);
  if (!real) return [];
  const { stdout } = await run('findmnt', ['-J', '-l', '-S', real, '-o', 'TARGET'], { okExitCodes: [1] });
  if (stdout.trim() === '') return [];
  const parsed = JSON.parse(stdout) as { filesystems?: Array<{ target: string }> };
  // Deepest first, so nested mounts come off before their parents.
  return (parsed.filesystems ?? []).map((fs) => fs.target).sort((a, b) => b.length - a.length);
}
