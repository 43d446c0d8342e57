/**
 * `dssnap backup --provider lvm` on real LVM: classic snapshots of XFS and ext4, a thin snapshot, a
 * DATA_DIR spread over two LVs, the quiesce modes this kernel refuses, and a classic snapshot that
 * overflows during the copy. Each backup is compared byte for byte (on the host) with the origin as it
 * was at the snapshot instant, while the origin changes during the copy: an rsync shim changes it after
 * the snapshot is mounted and before rsync reads it — no timing luck involved.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { formatDifferences } from '../../support/tree-compare.js';
import {
  backupInVm,
  compareGuestTrees,
  dss,
  dssnapInVm,
  dssState,
  installDataDir,
  jsonOf,
} from '../../vm/dss-guest.js';
import { type GuestShims, installShims } from '../../vm/guest-shims.js';
import { dssnapLvs, setUpVolumes } from '../../vm/lvm-guest.js';
import { type LvmTestEnv, mountRoot, realTools, stateDir } from './env.js';

const vg = 'dssvg';
const excludedByDefault = ['tmp', 'caches', 'data-catalog'];
/** Changes a config file and adds a dataset file in the origin, as DSS would. */
const changeOrigin = (dataDir: string): string =>
  `date +%s%N >> ${dataDir}/config/projects-changed.txt; head -c 65536 /dev/urandom > ${dataDir}/managed_datasets/new-$(date +%s%N).bin`;
/** Writes more into the origin than 8 MiB of copy-on-write space holds: the snapshot is invalidated. */
const overflowBusy =
  'dd if=/dev/urandom of=/srv/busy/dss/managed_datasets/churn.bin bs=1M count=24 oflag=direct status=none';

interface BackupResultJson {
  ok: boolean;
  exitCode: number;
  manifest: {
    provider: string;
    quiesce: string;
    copy: { location: string };
    snapshots: Array<{ id: string; volumeId: string }>;
  };
}

export function lvmBackupTests(env: LvmTestEnv, disk: string): void {
  describe('snapshot backups', () => {
    let shims: GuestShims;
    const common = { provider: 'lvm', stateDir, mountRoot };

    // Made while the VM warms up, before any suite starts (lvm.test.ts).
    const ready = env.setUp(async () => {
      const { vm } = env;
      await setUpVolumes(vm, vg, disk, [
        { name: 'backups', sizeMb: 256, fsType: 'ext4', mountPoint: '/backups' },
        { name: 'xfsdata', sizeMb: 320, fsType: 'xfs', mountPoint: '/srv/xfs' },
        { name: 'extdata', sizeMb: 64, fsType: 'ext4', mountPoint: '/srv/ext' },
        { name: 'thindata', sizeMb: 256, fsType: 'ext4', mountPoint: '/srv/thin', thin: true },
        { name: 'main', sizeMb: 320, fsType: 'xfs', mountPoint: '/srv/multi' },
        { name: 'datasets', sizeMb: 32, fsType: 'ext4', mountPoint: '/srv/multi/dss/managed_datasets' },
        { name: 'busy', sizeMb: 64, fsType: 'ext4', mountPoint: '/srv/busy' },
      ]);
      // DATA_DIR below the LV's root (xfs, thin, multi, busy) and at its root (ext).
      for (const dir of ['/srv/xfs/dss', '/srv/ext', '/srv/thin/dss', '/srv/multi/dss', '/srv/busy/dss']) {
        await installDataDir(vm, env.archive, dir);
      }
      await vm.sh('mkdir -p /backups/xfs /backups/ext /backups/thin /backups/multi /backups/busy');
      shims = await installShims(vm, '/root/shims-backup', { rsync: realTools.rsync });
    });
    beforeAll(async () => {
      await ready();
      await env.warm;
    });

    async function expectNothingLeft(destination?: string): Promise<void> {
      expect(await dssnapLvs(env.vm, vg)).toEqual([]);
      expect((await env.vm.sh(`grep -c " ${mountRoot}" /proc/mounts || true`)).stdout.trim()).toBe('0');
      if (destination) expect((await env.vm.exec('ls', ['-A', destination])).stdout.trim()).toBe('');
    }

    it.each([
      {
        fsType: 'xfs',
        dataDir: '/srv/xfs/dss',
        destination: '/backups/xfs',
        origin: `${vg}/xfsdata`,
        cli: true,
      },
      {
        fsType: 'ext4',
        dataDir: '/srv/ext',
        destination: '/backups/ext',
        origin: `${vg}/extdata`,
        cli: false,
      },
      {
        fsType: 'ext4 on a thin LV',
        dataDir: '/srv/thin/dss',
        destination: '/backups/thin',
        origin: `${vg}/thindata`,
        cli: false,
      },
    ])(
      'backs up DATA_DIR on $fsType byte for byte as it was at the snapshot instant, while it changes',
      async ({ dataDir, destination, origin, cli }) => {
        const { vm } = env;
        const reference = `/root/reference-${destination.split('/').pop()}`;
        await vm.sh(`rm -rf ${reference} && cp -a ${dataDir} ${reference}`);
        await shims.hook('rsync', changeOrigin(dataDir));

        // The user's command line once; the same procedure in the agent's warm process for the others.
        const json = cli
          ? jsonOf<BackupResultJson>(
              await dssnapInVm(
                vm,
                [
                  'backup',
                  ...['--provider', 'lvm', '--data-dir', dataDir, '--to', destination],
                  ...['--state-dir', stateDir, '--mount-root', mountRoot, '--json'],
                ],
                { pathPrefix: shims.dir },
              ),
            )
          : ((await backupInVm(
              vm,
              { ...common, dataDir, to: destination },
              { pathPrefix: shims.dir },
            )) as unknown as BackupResultJson);

        await shims.clear();
        expect(json.exitCode, JSON.stringify(json)).toBe(0);
        expect(json.manifest).toMatchObject({ provider: 'lvm', quiesce: 'none' });
        expect(json.manifest.snapshots.map((s) => s.volumeId)).toEqual([origin]);
        const differences = await compareGuestTrees(vm, reference, json.manifest.copy.location, {
          ignore: excludedByDefault,
        });
        expect(formatDifferences(differences)).toBe(formatDifferences([]));
        // The origin did change during the copy: the copy is the snapshot's, not the live tree's.
        const changed = await vm.sh(`diff -rq ${reference} ${dataDir} || true`);
        expect(changed.stdout).toContain('projects-changed.txt');
        await expectNothingLeft();
      },
    );

    it.each([
      {
        what: 'a DATA_DIR spread over two LVs with quiesce none',
        dataDir: '/srv/multi/dss',
        quiesce: undefined,
        message: `DATA_DIR spans 2 logical volumes (${vg}/main, ${vg}/datasets)`,
        hint: '--quiesce stop',
      },
      {
        what: 'fsfreeze of a one-LV DATA_DIR',
        dataDir: '/srv/ext',
        quiesce: 'fsfreeze',
        message: 'lvcreate -s cannot snapshot a frozen filesystem',
        hint: '--quiesce none (the default',
      },
      {
        what: 'fsfreeze of a DATA_DIR spread over two LVs',
        dataDir: '/srv/multi/dss',
        quiesce: 'fsfreeze',
        message: 'lvcreate -s cannot snapshot a frozen filesystem',
        hint: '--quiesce stop',
      },
    ])(
      'refuses $what on a kernel that cannot snapshot frozen filesystems (< 6.8), changing nothing',
      async ({ dataDir, quiesce, message, hint }) => {
        const result = await backupInVm(env.vm, {
          ...common,
          dataDir,
          to: '/backups/multi',
          ...(quiesce ? { quiesce } : {}),
        });

        expect(result.exitCode, JSON.stringify(result)).toBe(5);
        expect(result.error?.message).toContain(message);
        expect(result.error?.hint).toContain(hint);
        await expectNothingLeft('/backups/multi');
      },
    );

    it('backs up a DATA_DIR spread over two LVs as one set with --quiesce stop, DSS running again after', async () => {
      const { vm } = env;
      await dss(vm, '/srv/multi/dss', 'start');
      const reference = '/root/reference-multi';
      await vm.sh(`rm -rf ${reference} && cp -a /srv/multi/dss ${reference}`);

      const json = (await backupInVm(vm, {
        ...common,
        dataDir: '/srv/multi/dss',
        to: '/backups/multi',
        quiesce: 'stop',
        force: true,
      })) as unknown as BackupResultJson;

      expect(json.exitCode, JSON.stringify(json)).toBe(0);
      expect(json.manifest.snapshots.map((s) => s.volumeId).sort()).toEqual([`${vg}/datasets`, `${vg}/main`]);
      expect(await dssState(vm, '/srv/multi/dss')).toBe('running');
      // The nested LV's files are in the copy, in place; only the running DSS's own log moved on.
      const differences = await compareGuestTrees(vm, reference, json.manifest.copy.location, {
        ignore: [...excludedByDefault, 'run'],
      });
      expect(formatDifferences(differences)).toBe(formatDifferences([]));
      expect((await vm.exec('ls', [join(json.manifest.copy.location, 'managed_datasets')])).stdout).not.toBe(
        '',
      );
      await dss(vm, '/srv/multi/dss', 'stop');
      await expectNothingLeft();
    });

    it.each([
      {
        when: 'by the check after the copy (it overflowed once rsync had read everything)',
        hook: `${realTools.rsync} "$@"; status=$?\n${overflowBusy}\nexit $status`,
      },
      { when: 'when rsync fails reading the invalidated snapshot', hook: overflowBusy },
      // rsync never ends by itself here: only the watch during the copy can end the run.
      { when: 'by the watch during a long copy, which it stops', hook: `${overflowBusy}\nexec sleep 600` },
    ])(
      'fails the run when the classic snapshot overflows, detected $when, and catalogues nothing',
      async ({ hook }) => {
        const { vm } = env;
        await shims.hook('rsync', hook);
        const started = Date.now();

        const result = await backupInVm(
          vm,
          { ...common, dataDir: '/srv/busy/dss', to: '/backups/busy', snapshotSize: '8M' },
          { pathPrefix: shims.dir, exposureCheckMs: 1_000 },
        );

        await shims.clear();
        expect(result.exitCode, JSON.stringify(result)).toBe(1);
        expect(result.error?.message).toMatch(new RegExp(`snapshot ${vg}/busy-dssnap-\\S+ overflowed`));
        expect(result.error?.hint).toContain('--snapshot-size');
        // Well before the stuck rsync would have ended, and nothing of it left running.
        expect(Date.now() - started).toBeLessThan(120_000);
        expect((await vm.sh('pgrep -f "slee[p] 600" || true')).stdout.trim()).toBe('');
        await expectNothingLeft('/backups/busy');
      },
    );
  });
}
