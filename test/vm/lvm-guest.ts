/**
 * LVM set-ups inside the test VM, as shell run by the guest (native tools: cheap under TCG). The scratch
 * disks are /dev/vda, /dev/vdb…; everything made here lives and dies with the VM.
 */
import type { Vm } from './vm.js';

/** `pvcreate` + `vgcreate` on the scratch disk. */
export async function setUpVolumeGroup(vm: Vm, vg: string, disk = '/dev/vda'): Promise<void> {
  await vm.sh(`pvcreate -q -y ${disk} && vgcreate -q ${vg} ${disk}`);
}

export interface FilesystemLv {
  vg: string;
  name: string;
  /** Size of a classic LV, or virtual size of a thin LV. */
  sizeMb: number;
  fsType: 'xfs' | 'ext4';
  mountPoint: string;
  /** Make a thin LV in this pool (`vg/pool` must exist). */
  thinPool?: string;
}

/** Create an LV, make a filesystem on it and mount it (creating the mount point). */
export async function createFilesystemLv(vm: Vm, lv: FilesystemLv): Promise<void> {
  const create = lv.thinPool
    ? `lvcreate -q -y -V ${lv.sizeMb}M --thinpool ${lv.vg}/${lv.thinPool} -n ${lv.name}`
    : `lvcreate -q -y -L ${lv.sizeMb}M -n ${lv.name} ${lv.vg}`;
  const mkfs = lv.fsType === 'xfs' ? 'mkfs.xfs -q -f' : 'mkfs.ext4 -q -F';
  await vm.sh(
    `${create} && ${mkfs} /dev/${lv.vg}/${lv.name} && mkdir -p ${lv.mountPoint} && mount /dev/${lv.vg}/${lv.name} ${lv.mountPoint}`,
  );
}

/** A thin pool `vg/name`. */
export async function createThinPool(vm: Vm, vg: string, name: string, sizeMb: number): Promise<void> {
  await vm.sh(`lvcreate -q -y --type thin-pool -L ${sizeMb}M -n ${name} ${vg}`);
}

/**
 * A volume group on `disk` and its filesystem LVs, made and mounted in order (outer mounts first); the
 * LVs marked `thin` go in a thin pool `pool` of `poolMb`.
 */
export async function setUpVolumes(
  vm: Vm,
  vg: string,
  disk: string,
  lvs: ReadonlyArray<Omit<FilesystemLv, 'vg' | 'thinPool'> & { thin?: boolean }>,
  poolMb = 128,
): Promise<void> {
  await setUpVolumeGroup(vm, vg, disk);
  if (lvs.some((lv) => lv.thin)) await createThinPool(vm, vg, 'pool', poolMb);
  for (const { thin, ...lv } of lvs)
    await createFilesystemLv(vm, { vg, ...lv, ...(thin ? { thinPool: 'pool' } : {}) });
}

/** `vg/lv` of every LV carrying a dssnap tag (what a run or a suite left behind), in `vg` or all, sorted. */
export async function dssnapLvs(vm: Vm, vg?: string): Promise<string[]> {
  const { stdout } = await vm.exec('lvs', [
    '--noheadings',
    '-o',
    'vg_name,lv_name,lv_tags',
    ...(vg ? [vg] : []),
  ]);
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([, , tags]) => (tags ?? '').split(',').some((tag) => tag.startsWith('dssnap-')))
    .map(([name, lv]) => `${name}/${lv}`)
    .sort();
}
