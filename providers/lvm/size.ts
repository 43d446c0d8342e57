/**
 * How big a classic (copy-on-write) snapshot is. A classic snapshot holds the old version of every block
 * the origin changes while it exists; when that space fills up, LVM invalidates the snapshot. The
 * policy: `snapshotSize` (`--snapshot-size`) is a share of the origin (`20%`) or a size (`2G`); by
 * default 20 % of the origin, reduced to what the volume group has free but never below 5 %. A size
 * that does not fit in the VG's free extents is refused naming the shortfall. Thin snapshots need no
 * size. Pure functions.
 */
import { DssnapError } from '../../src/errors.js';

export type SnapshotSize = { kind: 'percent'; percent: number } | { kind: 'bytes'; bytes: number };

export const defaultSnapshotPercent = 20;
/** The default never goes below this share of the origin to fit a VG short of free extents. */
export const minimumDefaultPercent = 5;

const units: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/**
 * `20%` (of the origin) or a size with a binary unit (`512M`, `2G`, `1.5GiB`, `4096k`). Returns
 * undefined for anything else (the settings schema turns that into a message naming the value).
 */
export function parseSnapshotSize(text: string): SnapshotSize | undefined {
  const trimmed = text.trim();
  const percent = /^(\d+(?:\.\d+)?)\s*%$/.exec(trimmed);
  if (percent) {
    const value = Number(percent[1]);
    return value > 0 && value <= 100 ? { kind: 'percent', percent: value } : undefined;
  }
  const size = /^(\d+(?:\.\d+)?)\s*([kKmMgGtT])(?:i?[bB])?$/.exec(trimmed);
  if (!size) return undefined;
  const bytes = Math.ceil(Number(size[1]) * units[size[2]!.toLowerCase()]!);
  return bytes > 0 ? { kind: 'bytes', bytes } : undefined;
}

export interface ClassicOrigin {
  /** `vg/lv`. */
  id: string;
  vg: string;
  sizeBytes: number;
}

export interface VgSpace {
  freeBytes: number;
  extentBytes: number;
}

/**
 * The size in extents of each classic snapshot of `origins`, by origin id. `spec` undefined = the
 * default policy. Throws NO_SPACE (nothing is created) when a VG cannot hold its snapshots, naming the
 * VG, what is free, what is needed and the shortfall.
 */
export function planSnapshotExtents(
  origins: readonly ClassicOrigin[],
  vgs: ReadonlyMap<string, VgSpace>,
  spec: SnapshotSize | undefined,
): Map<string, number> {
  const plan = new Map<string, number>();
  const byVg = new Map<string, ClassicOrigin[]>();
  for (const origin of origins) byVg.set(origin.vg, [...(byVg.get(origin.vg) ?? []), origin]);
  for (const [vg, members] of byVg) {
    const space = vgs.get(vg);
    if (!space) throw new DssnapError('NOT_FOUND', `Volume group '${vg}' not found`, { details: { vg } });
    const freeExtents = Math.floor(space.freeBytes / space.extentBytes);
    const extentsAt = (percent: number, origin: ClassicOrigin): number =>
      Math.max(1, Math.ceil((origin.sizeBytes * percent) / 100 / space.extentBytes));
    let sizes: number[];
    let minimum: number[] | undefined;
    if (spec?.kind === 'bytes')
      sizes = members.map(() => Math.max(1, Math.ceil(spec.bytes / space.extentBytes)));
    else if (spec?.kind === 'percent') sizes = members.map((origin) => extentsAt(spec.percent, origin));
    else {
      const wanted = members.map((origin) => extentsAt(defaultSnapshotPercent, origin));
      minimum = members.map((origin) => extentsAt(minimumDefaultPercent, origin));
      const total = sum(wanted);
      // Shrink every snapshot by the same share to fit what is free, down to the minimum.
      sizes =
        total <= freeExtents
          ? wanted
          : wanted.map((extents, i) => Math.max(minimum![i]!, Math.floor((extents * freeExtents) / total)));
    }
    const needed = sum(minimum ?? sizes);
    if (sum(sizes) > freeExtents || needed > freeExtents) {
      const shortBy = (Math.max(needed, sum(sizes)) - freeExtents) * space.extentBytes;
      const what = members
        .map(
          (origin, i) =>
            `${origin.id} (${formatSize(origin.sizeBytes)}) ${formatSize((minimum ?? sizes)[i]! * space.extentBytes)}`,
        )
        .join(', ');
      const policy = spec
        ? `--snapshot-size ${spec.kind === 'percent' ? `${spec.percent}%` : formatSize(spec.bytes)}`
        : `at least ${minimumDefaultPercent}% of each origin (default ${defaultSnapshotPercent}%)`;
      throw new DssnapError(
        'NO_SPACE',
        `Volume group '${vg}' has ${formatSize(freeExtents * space.extentBytes)} free, but the snapshots need ${formatSize(needed * space.extentBytes)} (${policy}: ${what}): ${formatSize(shortBy)} short`,
        {
          hint: `Free ${formatSize(shortBy)} or more in '${vg}' (vgextend ${vg} /dev/NEWDISK, or shrink another LV), give a smaller --snapshot-size (a snapshot that fills up is invalidated and the run fails), or put DATA_DIR on a thin LV.`,
          details: {
            vg,
            freeBytes: freeExtents * space.extentBytes,
            neededBytes: needed * space.extentBytes,
            shortBytes: shortBy,
          },
        },
      );
    }
    for (const [i, origin] of members.entries()) plan.set(origin.id, sizes[i]!);
  }
  return plan;
}

/** 1536 → `1.5 KiB`; whole numbers without decimals (`20 MiB`). */
export function formatSize(bytes: number): string {
  const names = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < names.length - 1) {
    value /= 1024;
    unit++;
  }
  const text = Number.isInteger(value) ? String(value) : value.toFixed(1).replace(/\.0$/, '');
  return `${text} ${names[unit]}`;
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
