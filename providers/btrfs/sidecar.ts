/**
 * Sidecar records: btrfs subvolumes carry no tags, so each snapshot `<dir>/<name>` has its tags in
 * `<dir>/<name>.json`. The sidecar is written (atomically) before the snapshot is taken, so a crash
 * between the two leaves a record that `orphans` reports and `cleanup` removes.
 */
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import type { Snapshot } from '../../src/provider/types.js';

const sidecarSchema = z.object({
  version: z.literal(1),
  volumeId: z.string(),
  createdAt: z.string(),
  tags: z.record(z.string(), z.string()),
});

export type SidecarRecord = z.infer<typeof sidecarSchema>;

/** Path of the sidecar of the snapshot at `snapshotPath`. */
export function sidecarPathOf(snapshotPath: string): string {
  return `${snapshotPath}.json`;
}

/** Write the sidecar of `snapshot` (at `attributes.path`) atomically: temp file, then rename. */
export async function writeSidecar(snapshotPath: string, snapshot: Snapshot): Promise<void> {
  const record: SidecarRecord = {
    version: 1,
    volumeId: snapshot.volumeId,
    createdAt: snapshot.createdAt,
    tags: { ...snapshot.tags },
  };
  const target = sidecarPathOf(snapshotPath);
  const temp = join(dirname(snapshotPath), `.${process.pid}-${Date.now()}.tmp`);
  await writeFile(temp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  await rename(temp, target);
}

/** The sidecar of the snapshot at `snapshotPath`, or undefined when there is none (or it is unreadable). */
export async function readSidecar(snapshotPath: string): Promise<SidecarRecord | undefined> {
  try {
    return sidecarSchema.parse(JSON.parse(await readFile(sidecarPathOf(snapshotPath), 'utf8')));
  } catch {
    return undefined;
  }
}

/** Remove a sidecar; already gone is success. */
export async function removeSidecar(snapshotPath: string): Promise<void> {
  await rm(sidecarPathOf(snapshotPath), { force: true });
}

/**
 * Every valid sidecar in `dir`, as `{ snapshotPath, record }`. A missing directory yields none; files
 * that are not valid sidecars (temp files, foreign JSON) are ignored. Changes nothing.
 */
export async function readSidecars(
  dir: string,
): Promise<Array<{ snapshotPath: string; record: SidecarRecord }>> {
  const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw error;
  });
  const found: Array<{ snapshotPath: string; record: SidecarRecord }> = [];
  for (const name of names) {
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    const snapshotPath = join(dir, name.slice(0, -'.json'.length));
    const record = await readSidecar(snapshotPath);
    if (record) found.push({ snapshotPath, record });
  }
  return found;
}
