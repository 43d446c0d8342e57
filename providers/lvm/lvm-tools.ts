/**
 * The LVM commands the provider runs, each wrapped once, and their JSON reports parsed
 * (`lvs --reportformat json --units b --nosuffix`). Only this module knows LVM's command lines.
 */
import { existsSync, readFileSync } from 'node:fs';
import { DssnapError } from '../../src/errors.js';
import { CommandError, requireTool, run } from '../../src/host/exec.js';

/** LVM warns about every inherited descriptor; Node's are close-on-exec, but hosts differ. */
const env = { LVM_SUPPRESS_FD_WARNINGS: '1' };

export interface LogicalVolume {
  name: string;
  vg: string;
  /** `vg/name`: the id the provider uses. */
  fullName: string;
  /** `/dev/vg/name` (empty for hidden LVs). */
  path: string;
  /** `/dev/mapper/vg-name`. */
  dmPath: string;
  attr: string;
  sizeBytes: number;
  /** The origin of a snapshot, '' otherwise. */
  origin: string;
  /** The thin pool of a thin LV, '' otherwise. */
  pool: string;
  tags: string[];
  /** Share of a classic snapshot's copy-on-write space in use; undefined when not a classic snapshot. */
  snapPercent: number | undefined;
  /** Device numbers while active; -1 when inactive. */
  major: number;
  minor: number;
}

export interface VolumeGroup {
  name: string;
  sizeBytes: number;
  freeBytes: number;
  extentBytes: number;
}

const lvFields =
  'lv_name,vg_name,lv_path,lv_dm_path,lv_attr,lv_size,origin,pool_lv,lv_tags,snap_percent,lv_kernel_major,lv_kernel_minor';

/** True when `lv` is a thin volume (attr `V`). */
export function isThin(lv: LogicalVolume): boolean {
  return lv.attr[0] === 'V';
}

/** A classic snapshot (attr `s`, `S` while merging) or a thin snapshot (a thin LV with an origin). */
export function isSnapshot(lv: LogicalVolume): boolean {
  return lv.attr[0] === 's' || lv.attr[0] === 'S' || (isThin(lv) && lv.origin !== '');
}

/** A classic snapshot that overflowed: LVM marks it invalid (state `I`, or `S` invalid suspended). */
export function isInvalidSnapshot(lv: LogicalVolume): boolean {
  return (lv.attr[0] === 's' || lv.attr[0] === 'S') && (lv.attr[4] === 'I' || lv.attr[4] === 'S');
}

/** True when the LV is active (attr state `a`), e.g. a thin snapshot after `lvchange -ay -K`. */
export function isActive(lv: LogicalVolume): boolean {
  return lv.attr[4] === 'a';
}

/** Throws TOOL_MISSING naming lvm2 when its commands are not installed. */
export function requireLvmTools(): void {
  for (const tool of ['lvs', 'vgs', 'lvcreate', 'lvremove', 'lvchange']) requireTool(tool, 'lvm2');
}

/**
 * Throws UNSUPPORTED when this kernel has no device-mapper (no `/dev/mapper/control` and no
 * `device-mapper` in /proc/devices): no LVM volume can be active here.
 */
export function requireDeviceMapper(): void {
  if (hasDeviceMapper()) return;
  throw new DssnapError(
    'UNSUPPORTED',
    'This kernel has no device-mapper (/dev/mapper/control is missing and /proc/devices lists no device-mapper): LVM volumes cannot be used here',
    {
      hint: 'Load it (modprobe dm_mod; dm_snapshot, dm_thin_pool for snapshots), or use another provider or --mode cold.',
    },
  );
}

export function hasDeviceMapper(): boolean {
  if (existsSync('/dev/mapper/control')) return true;
  try {
    return /\bdevice-mapper\b/.test(readFileSync('/proc/devices', 'utf8'));
  } catch {
    return false;
  }
}

/** The device-mapper block major number, or undefined without device-mapper. */
export function deviceMapperMajor(): number | undefined {
  try {
    const line = readFileSync('/proc/devices', 'utf8')
      .split('\n')
      .find((l) => /\sdevice-mapper$/.test(l.trim()));
    return line ? Number(line.trim().split(/\s+/)[0]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The LVs named (`vg/lv`), or every LV when `names` is empty. An LV that does not exist makes `lvs`
 * fail: use `findLv` for a lookup that may miss. Changes nothing.
 */
export async function listLvs(names: readonly string[] = []): Promise<LogicalVolume[]> {
  const { stdout } = await run(
    'lvs',
    ['--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', lvFields, ...names],
    { env, timeoutMs: 60_000 },
  );
  return parseLvsReport(stdout);
}

/** The LV `vg/lv`, or undefined when it (or its VG) does not exist. */
export async function findLv(fullName: string): Promise<LogicalVolume | undefined> {
  try {
    return (await listLvs([fullName]))[0];
  } catch (error) {
    if (isLvmNotFound(error)) return undefined;
    throw error;
  }
}

/** Parse `lvs --reportformat json --units b --nosuffix -o …`. */
export function parseLvsReport(stdout: string): LogicalVolume[] {
  const rows = reportRows(stdout, 'lv');
  return rows.map((row) => {
    const name = row.lv_name ?? '';
    const vg = row.vg_name ?? '';
    const snap = row.snap_percent ?? '';
    return {
      name,
      vg,
      fullName: `${vg}/${name}`,
      path: row.lv_path ?? '',
      dmPath: row.lv_dm_path ?? '',
      attr: row.lv_attr ?? '',
      sizeBytes: Number(row.lv_size ?? 0),
      origin: row.origin ?? '',
      pool: row.pool_lv ?? '',
      tags: (row.lv_tags ?? '').split(',').filter(Boolean),
      snapPercent: snap === '' ? undefined : Number(snap),
      major: Number(row.lv_kernel_major ?? -1),
      minor: Number(row.lv_kernel_minor ?? -1),
    };
  });
}

/** The VGs named, or all. Changes nothing. */
export async function listVgs(names: readonly string[] = []): Promise<VolumeGroup[]> {
  const { stdout } = await run(
    'vgs',
    [
      '--reportformat',
      'json',
      '--units',
      'b',
      '--nosuffix',
      '-o',
      'vg_name,vg_size,vg_free,vg_extent_size',
      ...names,
    ],
    { env, timeoutMs: 60_000 },
  );
  return reportRows(stdout, 'vg').map((row) => ({
    name: row.vg_name ?? '',
    sizeBytes: Number(row.vg_size ?? 0),
    freeBytes: Number(row.vg_free ?? 0),
    extentBytes: Number(row.vg_extent_size ?? 4 * 1024 * 1024),
  }));
}

export interface CreateSnapshotArgs {
  origin: LogicalVolume;
  name: string;
  /** Classic snapshots only: the copy-on-write size in extents. Thin snapshots take none. */
  extents?: number;
  tags: readonly string[];
}

/**
 * `lvcreate -s`: returns once the snapshot exists (LVM suspends the origin and freezes its filesystem
 * for the instant itself). A thin snapshot is created inactive with the activation-skip flag.
 */
export async function createSnapshotLv(args: CreateSnapshotArgs): Promise<void> {
  await run(
    'lvcreate',
    [
      '--yes',
      '--quiet',
      '--snapshot',
      ...(args.extents === undefined ? [] : ['--extents', String(args.extents)]),
      '--name',
      args.name,
      ...args.tags.flatMap((tag) => ['--addtag', tag]),
      args.origin.fullName,
    ],
    { env, timeoutMs: 120_000 },
  );
}

/** `lvremove`: deletes the LV (deactivating it first). Throws when LVM refuses (e.g. it is open). */
export async function removeLv(fullName: string): Promise<void> {
  await run('lvremove', ['--yes', '--force', fullName], { env, timeoutMs: 120_000 });
}

/** Add and remove tags on an LV in one `lvchange`. */
export async function changeTags(
  fullName: string,
  add: readonly string[],
  remove: readonly string[],
): Promise<void> {
  if (add.length === 0 && remove.length === 0) return;
  await run(
    'lvchange',
    [...remove.flatMap((tag) => ['--deltag', tag]), ...add.flatMap((tag) => ['--addtag', tag]), fullName],
    { env, timeoutMs: 60_000 },
  );
}

/** Activate (`-K`: even with the activation-skip flag thin snapshots carry) or deactivate an LV. */
export async function setActive(fullName: string, active: boolean): Promise<void> {
  await run(
    'lvchange',
    active ? ['--activate', 'y', '--ignoreactivationskip', fullName] : ['--activate', 'n', fullName],
    {
      env,
      timeoutMs: 60_000,
    },
  );
}

/** The targets device-mapper has loaded (`dmsetup targets`: snapshot, thin…). */
export async function deviceMapperTargets(): Promise<string[]> {
  const { stdout } = await run('dmsetup', ['targets'], { timeoutMs: 30_000 });
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

/** True when LVM's error says the LV or VG does not exist. */
export function isLvmNotFound(error: unknown): boolean {
  return (
    error instanceof CommandError &&
    /Failed to find logical volume|Volume group "[^"]*" not found|not found in volume group|Logical volume .* not found/i.test(
      error.stderr,
    )
  );
}

/** True when LVM refused because the LV is busy, which may pass (rsnapshot #162: retry lvremove). */
export function isLvmBusy(error: unknown): boolean {
  return (
    error instanceof CommandError &&
    (error.timedOut || /in use|busy|open logical volume|Can't remove open|try again|lock/i.test(error.stderr))
  );
}

function reportRows(stdout: string, key: 'lv' | 'vg'): Array<Record<string, string | undefined>> {
  const parsed = JSON.parse(stdout) as { report?: Array<Record<string, unknown>> };
  return (parsed.report ?? []).flatMap((part) => (part[key] as Array<Record<string, string>>) ?? []);
}
