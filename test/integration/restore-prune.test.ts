/**
 * Retention applied for real: rsync generations, archives, their file indexes and manifests, and
 * retained btrfs snapshots removed through the provider; what a running job uses and the newest backup
 * kept; `--dry-run` prints the reasons and changes nothing; `backup --prune` after a successful run; a
 * prune killed half-way finished by the next one. Backup times are spread over days by rewriting the
 * catalog, so that the policy has a history to work on.
 */
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { markInUse } from '../../src/catalog/in-use.js';
import { catalogDir, type Manifest, readManifests } from '../../src/catalog/manifest.js';
import { stopDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { acquireLock } from '../../src/procedure/lock.js';
import { dssnap } from '../support/cli.js';
import { createDssHost, type DssHost } from '../support/dss-host.js';

const log = silentLogger();

/** Give the catalogued backup `id` the time `iso` (its start, or its snapshot instant). */
async function backdate(dir: string, id: string, iso: string): Promise<void> {
  const path = join(dir, `${id}.json`);
  const manifest = JSON.parse(await readFile(path, 'utf8')) as Manifest;
  manifest.startedAt = iso;
  for (const snapshot of manifest.snapshots) snapshot.createdAt = iso;
  await writeFile(path, `${JSON.stringify(manifest, null, 2)}\n`);
}

describe('prune generations and archives', () => {
  let host: DssHost;
  const ids: string[] = [];
  const times = [
    '2024-05-01T02:00:00Z',
    '2024-05-02T02:00:00Z',
    '2024-05-02T20:00:00Z',
    '2024-05-03T02:00:00Z',
    '2024-05-04T02:00:00Z',
  ];
  const cli = (...args: string[]) =>
    dssnap(['prune', '--to', host.destination, '--state-dir', host.stateDir, ...args]);

  beforeAll(async () => {
    host = await createDssHost({ storage: 'plain' });
    for (const [index, time] of times.entries()) {
      const format = index === 4 ? 'tar' : 'rsync';
      const { backupId } = await runBackup(host.options({ mode: 'cold', force: true, format }), { log });
      await backdate(catalogDir(host.destination), backupId, time);
      ids.push(backupId);
    }
    await stopDss(host.info, { log });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('prints what it keeps and why with --dry-run, and removes nothing', async () => {
    const before = await host.destinationEntries();

    const result = await cli('--keep-daily', '2', '--time-zone', 'UTC', '--dry-run');

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`keep    ${ids[4]}  2024-05-04T02:00:00Z  daily snapshot (2024-05-04)`);
    expect(result.stdout).toContain(`keep    ${ids[3]}  2024-05-03T02:00:00Z  daily snapshot (2024-05-03)`);
    expect(result.stdout).toMatch(new RegExp(`remove  ${ids[0]} .*would remove`));
    expect(await host.destinationEntries()).toEqual(before);
  });

  it('never removes what a running restore or verify reads, nor the base of a running backup', async () => {
    const release = markInUse(host.stateDir, ids[1]!, 'restore');
    // A live run holds the DATA_DIR's lock: its link base is the newest generation (ids[3]; ids[4] is a tar).
    const lock = acquireLock(host.stateDir, host.dataDir, 'someone-else');
    try {
      const result = await cli('--keep-last', '1', '--dry-run', '--json');

      const report = JSON.parse(result.stdout) as {
        groups: { keep: { id: string; reasons: string[] }[]; remove: { id: string }[] }[];
      };
      const keep = Object.fromEntries(report.groups[0]!.keep.map((k) => [k.id, k.reasons]));
      expect(keep[ids[4]!]).toEqual(['last snapshot']);
      expect(keep[ids[3]!]).toEqual(['newest generation, the base of a backup running now']);
      expect(keep[ids[1]!]).toEqual(['in use by a running restore']);
      expect(report.groups[0]!.remove.map((r) => r.id).sort()).toEqual([ids[0], ids[2]]);
    } finally {
      lock.lock.release();
      release();
    }
  });

  it('removes the copies, indexes and manifests the policy does not keep', async () => {
    const result = await cli('--keep-daily', '2', '--time-zone', 'UTC');

    expect(result.exitCode).toBe(0);
    expect(await host.destinationEntries()).toEqual([ids[3], `${ids[4]}.tar.zst`]);
    expect((await readManifests(catalogDir(host.destination))).map((m) => m.id)).toEqual([ids[3], ids[4]]);
    for (const id of ids.slice(0, 3)) {
      expect(existsSync(join(catalogDir(host.destination), `${id}.files.jsonl.gz`))).toBe(false);
    }
    const list = await dssnap(['list', '--to', host.destination, '--state-dir', host.stateDir]);
    expect(list.stdout).not.toContain(ids[0]);
  });

  it('finishes a prune that was killed after hiding a manifest', async () => {
    const dir = catalogDir(host.destination);
    await rename(join(dir, `${ids[3]}.json`), join(dir, `.${ids[3]}.json.pruning`));

    const result = await cli('--keep-last', '5');

    expect(result.exitCode).toBe(0);
    expect(await host.destinationEntries()).toEqual([`${ids[4]}.tar.zst`]);
    expect(existsSync(join(dir, `.${ids[3]}.json.pruning`))).toBe(false);
  });

  it('applies the policy after a successful run with backup --prune', async () => {
    const result = await runBackup(host.options({ mode: 'cold', force: true, prune: true, keepLast: 1 }), {
      log,
    });

    expect(result.exitCode).toBe(0);
    expect(result.prune!.removed).toBe(1);
    expect(await host.destinationEntries()).toEqual([result.backupId]);
    await stopDss(host.info, { log });
  });

  it.each([
    [['--dry-run'], /No retention policy/],
    [['--keep-daily', '-2'], /Invalid --keep-daily: -2/],
    [['--keep-daily', '1', '--time-zone', 'Mars/Base'], /Unknown time zone 'Mars\/Base'/],
  ])('refuses %j with exit 3', async (args, message) => {
    const result = await cli(...args);

    expect(result.exitCode).toBe(3);
    expect(result.stderr).toMatch(message);
  });
});

describe('prune retained btrfs snapshots', () => {
  let host: DssHost;

  beforeAll(async () => {
    host = await createDssHost({ storage: 'btrfs' });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('deletes the snapshots of pruned snapshot-only backups through the provider, and unnamed ones with --provider', async () => {
    const ids: string[] = [];
    const catalog = join(host.stateDir, 'catalog');
    for (const day of ['01', '02', '03']) {
      const { backupId } = await runBackup(
        host.options({ copy: 'none', keepSnapshot: true, to: undefined }),
        { log },
      );
      await backdate(catalog, backupId, `2024-06-${day}T02:00:00Z`);
      ids.push(backupId);
    }
    const snapshots = (await readManifests(catalog)).map((m) => m.snapshots[0]!.id);
    expect(snapshots.every((s) => existsSync(s))).toBe(true);
    // A retained snapshot no manifest names any more.
    const orphan = (
      await runBackup(host.options({ copy: 'none', keepSnapshot: true, to: undefined }), { log })
    ).manifest;
    await rename(join(catalog, `${orphan.id}.json`), join(catalog, `${orphan.id}.json.bak`));

    const prune = (...args: string[]) =>
      dssnap([
        'prune',
        '--state-dir',
        host.stateDir,
        '--snapshot-dir',
        host.snapshotDir!,
        '--keep-last',
        '1',
        ...args,
      ]);

    const catalogued = await prune('--data-dir', host.dataDir);

    expect(catalogued.exitCode).toBe(0);
    expect((await readManifests(catalog)).map((m) => m.id)).toEqual([ids[2]]);
    expect(snapshots.map((s) => existsSync(s))).toEqual([false, false, true]);

    // With --provider, the unnamed retained snapshot counts too: it is the newest, so it is kept.
    const all = await prune('--provider', 'btrfs');

    expect(all.exitCode).toBe(0);
    expect(all.stdout).toContain(`keep    ${orphan.snapshots[0]!.id}`);
    expect((await readManifests(catalog)).map((m) => m.id)).toEqual([]);
    expect(snapshots.map((s) => existsSync(s))).toEqual([false, false, false]);
    expect(existsSync(orphan.snapshots[0]!.id)).toBe(true);
  });
});
