/**
 * `dssnap backup --provider lvm` on real LVM inside the test VM (test/vm): classic snapshots of XFS and
 * ext4, a thin snapshot, a DATA_DIR spread over two LVs, and a snapshot that overflows during the copy.
 * Each backup is compared byte for byte (on the host) with the origin as it was at the snapshot instant,
 * while a writer changes the origin during the copy.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatDifferences } from '../support/tree-compare.js';
import {
  backupInVm,
  compareGuestTrees,
  dataDirArchive,
  dss,
  dssnapInVm,
  dssState,
  installDataDir,
  jsonOf,
  writerDuringCopy,
} from '../vm/dss-guest.js';
import { createFilesystemLv, createThinPool, dssnapLvs, setUpVolumeGroup } from '../vm/lvm-guest.js';
import { bootVm, type Vm } from '../vm/vm.js';

const vg = 'dssvg';
const mountRoot = '/run/dssnap';
const stateDir = '/var/lib/dssnap';
const excludedByDefault = ['tmp', 'caches', 'data-catalog'];
/** Changes a config file and adds a dataset file in the origin, as DSS would. */
const changeOrigin = (dataDir: string): string =>
  `date +%s%N >> ${dataDir}/config/projects-changed.txt; head -c 65536 /dev/urandom > ${dataDir}/managed_datasets/new-$(date +%s%N).bin`;

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

// Real LVM under TCG on a shared 2-core machine: each run takes tens of seconds, not milliseconds.
describe('snapshot backups with the lvm provider (real LVM in a VM)', { timeout: 600_000 }, () => {
  let vm: Vm;

  beforeAll(async () => {
    vm = await bootVm({ diskMb: 6144 });
    // Load dssnap's modules in the agent while the volumes are made (Node is slow in the guest).
    const warm = vm.call('test/vm/guest-backup.js', 'backup', { dataDir: '/nonexistent' });
    const archive = await dataDirArchive(vm);
    await setUpVolumeGroup(vm, vg);
    await createFilesystemLv(vm, {
      vg,
      name: 'backups',
      sizeMb: 1024,
      fsType: 'ext4',
      mountPoint: '/backups',
    });
    await createFilesystemLv(vm, { vg, name: 'xfsdata', sizeMb: 320, fsType: 'xfs', mountPoint: '/srv/xfs' });
    await createFilesystemLv(vm, {
      vg,
      name: 'extdata',
      sizeMb: 128,
      fsType: 'ext4',
      mountPoint: '/srv/ext',
    });
    await createThinPool(vm, vg, 'pool', 256);
    await createFilesystemLv(vm, {
      vg,
      name: 'thindata',
      sizeMb: 1024,
      fsType: 'ext4',
      mountPoint: '/srv/thin',
      thinPool: 'pool',
    });
    await createFilesystemLv(vm, { vg, name: 'main', sizeMb: 320, fsType: 'xfs', mountPoint: '/srv/multi' });
    await createFilesystemLv(vm, {
      vg,
      name: 'datasets',
      sizeMb: 64,
      fsType: 'ext4',
      mountPoint: '/srv/multi/dss/managed_datasets',
    });
    await createFilesystemLv(vm, { vg, name: 'busy', sizeMb: 320, fsType: 'ext4', mountPoint: '/srv/busy' });
    // DATA_DIR below the LV's root (xfs, thin, multi, busy) and at its root (ext).
    for (const dir of ['/srv/xfs/dss', '/srv/ext', '/srv/thin/dss', '/srv/multi/dss', '/srv/busy/dss']) {
      await installDataDir(vm, archive, dir);
    }
    // Enough to read that the copy of /srv/busy lasts seconds: the overflow must happen during it.
    await vm.sh(
      'dd if=/dev/zero of=/srv/busy/dss/managed_datasets/big.bin bs=1M count=96 status=none && chown 65534:65534 /srv/busy/dss/managed_datasets/big.bin && mkdir -p /backups/xfs /backups/ext /backups/thin /backups/multi /backups/busy',
    );
    await warm;
  }, 900_000);

  afterAll(async () => {
    await vm?.dispose();
  });

  const common = { provider: 'lvm', stateDir, mountRoot };

  async function expectNothingLeft(): Promise<void> {
    expect(await dssnapLvs(vm)).toEqual([]);
    expect((await vm.sh(`grep -c " ${mountRoot}" /proc/mounts || true`)).stdout.trim()).toBe('0');
  }

  it.each([
    {
      fsType: 'xfs',
      dataDir: '/srv/xfs/dss',
      destination: '/backups/xfs',
      origin: `${vg}/xfsdata`,
      cli: true,
    },
    { fsType: 'ext4', dataDir: '/srv/ext', destination: '/backups/ext', origin: `${vg}/extdata`, cli: false },
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
      const reference = `/root/reference-${destination.split('/').pop()}`;
      await vm.sh(`rm -rf ${reference} && cp -a ${dataDir} ${reference}`);
      const writer = await writerDuringCopy(vm, mountRoot, changeOrigin(dataDir));

      // The user's command line once; the same procedure in the agent's warm process for the others.
      const json = cli
        ? jsonOf<BackupResultJson>(
            await dssnapInVm(vm, [
              'backup',
              ...['--provider', 'lvm', '--data-dir', dataDir, '--to', destination],
              ...['--state-dir', stateDir, '--mount-root', mountRoot, '--json'],
            ]),
          )
        : ((await backupInVm(vm, { ...common, dataDir, to: destination })) as unknown as BackupResultJson);

      const rounds = await writer.stop();
      expect(json.exitCode, JSON.stringify(json)).toBe(0);
      expect(json.manifest).toMatchObject({ provider: 'lvm', quiesce: 'none' });
      expect(json.manifest.snapshots.map((s) => s.volumeId)).toEqual([origin]);
      expect(rounds).toBeGreaterThan(0);
      const differences = await compareGuestTrees(vm, reference, json.manifest.copy.location, {
        ignore: excludedByDefault,
      });
      expect(formatDifferences(differences)).toBe(formatDifferences([]));
      const changed = await compareGuestTrees(vm, reference, dataDir, {
        ignore: excludedByDefault,
        xattrs: false,
      });
      expect(changed.length).toBeGreaterThan(0);
      await expectNothingLeft();
    },
  );

  it('refuses a DATA_DIR spread over two LVs with quiesce none on a kernel that cannot snapshot frozen filesystems, changing nothing', async () => {
    const result = await backupInVm(vm, { ...common, dataDir: '/srv/multi/dss', to: '/backups/multi' });

    expect(result.exitCode).toBe(5);
    expect(result.error?.message).toContain(`DATA_DIR spans 2 logical volumes (${vg}/main, ${vg}/datasets)`);
    expect(result.error?.hint).toContain('--quiesce stop');
    expect((await vm.exec('ls', ['-A', '/backups/multi'])).stdout.trim()).toBe('');
    await expectNothingLeft();
  });

  it('backs up a DATA_DIR spread over two LVs as one set with --quiesce stop, DSS running again after', async () => {
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

  it('fails the run when the classic snapshot overflows during the copy, and catalogues nothing', async () => {
    const writer = await writerDuringCopy(
      vm,
      mountRoot,
      'dd if=/dev/urandom of=/srv/busy/dss/managed_datasets/churn.bin bs=1M count=24 oflag=direct status=none',
    );

    const result = await backupInVm(vm, {
      ...common,
      dataDir: '/srv/busy/dss',
      to: '/backups/busy',
      snapshotSize: '8M',
    });

    const rounds = await writer.stop();
    expect(rounds).toBeGreaterThan(0);
    expect(result.exitCode, JSON.stringify(result)).toBe(1);
    expect(result.error?.message).toMatch(new RegExp(`snapshot ${vg}/busy-dssnap-\\S+ overflowed`));
    expect(result.error?.hint).toContain('--snapshot-size');
    expect((await vm.exec('ls', ['-A', '/backups/busy'])).stdout.trim()).toBe('');
    await expectNothingLeft();
  });
});
