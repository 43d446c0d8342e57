/**
 * The LVM provider's retained snapshots and its refusals: a pre-upgrade rollback point
 * (`--copy none --keep-snapshot`) retained by tag, `dssnap list` and `dssnap cleanup` finding snapshots
 * by their LVM tags, `doctor`, and bad input — a VG without room, a snapshot name clash, lvm2 missing —
 * each a clear error that changes nothing.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeTags } from '../../../providers/lvm/tags.js';
import { TagKey } from '../../../src/provider/types.js';
import { backupInVm, dssnapInVm, installDataDir, jsonOf } from '../../vm/dss-guest.js';
import { dssnapLvs, setUpVolumes } from '../../vm/lvm-guest.js';
import { remoteProvider } from '../../vm/remote-provider.js';
import { RemoteError } from '../../vm/vm.js';
import { type LvmTestEnv, stateDir } from './env.js';

const vg = 'keepvg';
const dataDir = '/keep/dss/data';
const common = ['--provider', 'lvm', '--state-dir', stateDir];

export function lvmRetentionTests(env: LvmTestEnv, disk: string): void {
  describe('retained snapshots, list, cleanup, doctor and refusals', () => {
    // Made while the VM warms up, before any suite starts (lvm.test.ts).
    const ready = env.setUp(async () => {
      await setUpVolumes(env.vm, vg, disk, [
        { name: 'dss', sizeMb: 320, fsType: 'xfs', mountPoint: '/keep/dss' },
      ]);
      await installDataDir(env.vm, env.archive, dataDir);
    });
    beforeAll(async () => {
      await ready();
      await env.warm;
    });

    it('keeps a pre-upgrade rollback point as a tagged snapshot that list finds and cleanup leaves alone', async () => {
      // A crashed run's snapshot: tagged like dssnap's, not retained.
      const orphanTags = encodeTags({
        [TagKey.runId]: 'crashed-run',
        [TagKey.dataDir]: dataDir,
        [TagKey.role]: 'snapshot',
        [TagKey.createdAt]: '2020-01-01T00:00:00.000Z',
      });
      await env.vm.exec('lvcreate', [
        '-q',
        '-y',
        '-s',
        '-L',
        '16M',
        '-n',
        'orphan',
        ...orphanTags.flatMap((t) => ['--addtag', t]),
        `${vg}/dss`,
      ]);

      const kept = await backupInVm(env.vm, {
        provider: 'lvm',
        dataDir,
        stateDir,
        copy: 'none',
        keepSnapshot: true,
      });
      // Two fresh CLI processes at once: Node's start-up under TCG is what they cost.
      const [listed, cleaned] = await Promise.all([
        dssnapInVm(env.vm, ['list', ...common, '--data-dir', dataDir, '--json']),
        dssnapInVm(env.vm, ['cleanup', ...common, '--json']),
      ]);

      expect(kept.exitCode, JSON.stringify(kept)).toBe(0);
      const snapshotId = kept.manifest!.snapshots[0]!;
      expect(snapshotId).toMatchObject({
        id: expect.stringMatching(new RegExp(`^${vg}/dss-dssnap-`)),
        retained: true,
      });
      const { stdout: tags } = await env.vm.exec('lvs', ['--noheadings', '-o', 'lv_tags', snapshotId.id]);
      expect(tags).toContain('dssnap-retain.true');
      expect(tags).toContain('dssnap-data-dir.+2Fkeep+2Fdss+2Fdata');
      expect(listed.exitCode, listed.stderr).toBe(0);
      expect(jsonOf<{ snapshots: Array<{ id: string }> }>(listed).snapshots.map((s) => s.id)).toEqual([
        snapshotId.id,
      ]);
      expect(cleaned.exitCode, cleaned.stderr).toBe(0);
      expect(jsonOf<{ resources: Array<{ id: string; deleted: boolean }> }>(cleaned).resources).toEqual([
        expect.objectContaining({ id: `${vg}/orphan`, deleted: true }),
      ]);
      expect(await dssnapLvs(env.vm, vg)).toEqual([snapshotId.id]);
      await env.vm.exec('lvremove', ['-y', '-f', snapshotId.id]);
    });

    it('refuses a snapshot size the VG has no room for, naming the shortfall, before changing anything', async () => {
      const result = await backupInVm(env.vm, {
        provider: 'lvm',
        dataDir,
        stateDir,
        copy: 'none',
        keepSnapshot: true,
        snapshotSize: '4G',
      });

      expect(result.exitCode).toBe(5);
      expect(result.error).toMatchObject({
        code: 'NO_SPACE',
        hint: expect.stringContaining(`vgextend ${vg}`),
      });
      expect(result.error?.message).toMatch(
        new RegExp(`Volume group '${vg}' has .* free, but the snapshots need 4 GiB .*: .* short`),
      );
      expect(await dssnapLvs(env.vm, vg)).toEqual([]);
    });

    it('refuses a snapshot name that is taken, creating nothing', async () => {
      const provider = await remoteProvider(env.vm, 'lvm', { stateDir });
      const tags = { [TagKey.runId]: 'same-run', [TagKey.dataDir]: dataDir };
      const volumes = await provider.locate(dataDir);
      const [first] = await provider.createSnapshots(volumes, tags);

      const second = await provider.createSnapshots(volumes, tags).catch((error: unknown) => error);

      expect(second).toBeInstanceOf(RemoteError);
      expect(second).toMatchObject({
        message: `A logical volume named ${first!.id} already exists: the snapshot of ${vg}/dss cannot take its name`,
        hint: expect.stringContaining('dssnap cleanup --provider lvm'),
      });
      expect(await dssnapLvs(env.vm, vg)).toEqual([first!.id]);
      await provider.ensureDeleted(first!);
    });

    it('doctor checks lvm2, device-mapper and its targets, room and freeze support', async () => {
      const provider = await remoteProvider(env.vm, 'lvm', { stateDir });

      const checks = await provider.doctor!({ dataDir });

      expect(checks.filter((check) => !check.ok)).toEqual([]);
      expect(checks.map((check) => check.name)).toEqual(
        expect.arrayContaining([
          'lvm2 tools',
          'device-mapper',
          'dm target snapshot',
          `room ${vg}/dss`,
          'freeze /keep/dss',
        ]),
      );
    });

    it('says lvm2 is missing, naming the package, and changes nothing', async () => {
      // Only in the guest's overlay: the LVM binary becomes a file that cannot be run.
      await env.vm.sh(
        'printf "" > /root/not-lvm && chmod 644 /root/not-lvm && mount --bind /root/not-lvm /usr/sbin/lvm',
      );
      try {
        const result = await backupInVm(env.vm, {
          provider: 'lvm',
          dataDir,
          stateDir,
          copy: 'none',
          keepSnapshot: true,
        });

        expect(result.exitCode).toBe(5);
        expect(result.error).toMatchObject({
          code: 'TOOL_MISSING',
          message: expect.stringMatching(/The command 'lv\w+' is not installed/),
          hint: expect.stringContaining('lvm2'),
        });
      } finally {
        await env.vm.sh('umount /usr/sbin/lvm');
      }
      expect(await dssnapLvs(env.vm, vg)).toEqual([]);
    });
  });
}
