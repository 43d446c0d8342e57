/**
 * Failures of an LVM snapshot backup, on real LVM inside the test VM: a failure at each step that changes
 * the world is undone (no snapshot LV left, nothing mounted, filesystem thawed, DSS running, no partial
 * copy, journal closed), and a run killed with SIGKILL is undone by `dssnap recover`. Faults are real
 * (a full destination) or injected at the narrowest seam: a shim on PATH that runs the real LVM or mount
 * command and then fails, or fails before it, exactly as a flaky host would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backupInVm,
  dataDirArchive,
  dss,
  dssState,
  guestCli,
  installDataDir,
  recoverInVm,
} from '../vm/dss-guest.js';
import { createFilesystemLv, createThinPool, dssnapLvs, setUpVolumeGroup } from '../vm/lvm-guest.js';
import { bootVm, type Vm } from '../vm/vm.js';

const vg = 'faultvg';
const mountRoot = '/run/dssnap';
const stateDir = '/var/lib/dssnap';
const shims = '/root/shims';

/** PATH shims: each runs the real command unless its fault is armed (a file under /root/shims/armed/). */
const shimScript = (tool: string, real: string, fault: string): string => `#!/bin/sh
if [ -e ${shims}/armed/${tool} ]; then
${fault}
fi
exec ${real} "$@"
`;

describe('faults of lvm snapshot backups are undone (real LVM in a VM)', { timeout: 600_000 }, () => {
  let vm: Vm;

  beforeAll(async () => {
    vm = await bootVm({ diskMb: 4096 });
    const warm = vm.call('test/vm/guest-backup.js', 'backup', { dataDir: '/nonexistent' });
    const archive = await dataDirArchive(vm);
    await setUpVolumeGroup(vm, vg);
    await createFilesystemLv(vm, {
      vg,
      name: 'backups',
      sizeMb: 512,
      fsType: 'ext4',
      mountPoint: '/backups',
    });
    await createFilesystemLv(vm, { vg, name: 'tiny', sizeMb: 8, fsType: 'ext4', mountPoint: '/tiny' });
    await createFilesystemLv(vm, { vg, name: 'xfsdata', sizeMb: 320, fsType: 'xfs', mountPoint: '/srv/xfs' });
    await createThinPool(vm, vg, 'pool', 128);
    await createFilesystemLv(vm, {
      vg,
      name: 'thindata',
      sizeMb: 512,
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
    for (const dir of ['/srv/xfs/dss', '/srv/thin/dss', '/srv/multi/dss']) {
      await installDataDir(vm, archive, dir);
      await dss(vm, dir, 'start');
    }
    // A DATA_DIR big enough that its copy lasts: the SIGKILL lands during it.
    await vm.sh('dd if=/dev/zero of=/srv/xfs/dss/managed_datasets/big.bin bs=1M count=96 status=none');
    await vm.sh(
      [
        `mkdir -p ${shims}/armed /backups/runs`,
        `cat > ${shims}/lvcreate <<'EOF'\n${shimScript('lvcreate', '/usr/sbin/lvcreate', `  n=$(cat ${shims}/count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > ${shims}/count\n  if [ "$n" -ge 2 ]; then /usr/sbin/lvcreate "$@"; echo "lvcreate: simulated failure after creating the LV" >&2; exit 5; fi`)}EOF`,
        `cat > ${shims}/lvchange <<'EOF'\n${shimScript('lvchange', '/usr/sbin/lvchange', '  case "$*" in *"--activate y"*) echo "lvchange: simulated activation failure" >&2; exit 5;; esac')}EOF`,
        `cat > ${shims}/mount <<'EOF'\n${shimScript('mount', '/usr/bin/mount', `  case "$*" in *${mountRoot}/*) echo "mount: simulated failure" >&2; exit 32;; esac`)}EOF`,
        `chmod 755 ${shims}/*`,
      ].join('\n'),
    );
    await warm;
  }, 900_000);

  afterAll(async () => {
    await vm?.dispose();
  });

  /** What a user checks after a failed run: nothing of it is left, DSS runs, writes go through. */
  async function expectUndone(dataDir: string, destination: string): Promise<void> {
    expect(await dssnapLvs(vm)).toEqual([]);
    expect((await vm.sh(`grep -c " ${mountRoot}/" /proc/mounts || true`)).stdout.trim()).toBe('0');
    expect(await dssState(vm, dataDir)).toBe('running');
    // Thawed: a write returns at once (a frozen filesystem would block it until the timeout).
    expect(
      (await vm.exec('touch', [`${dataDir}/config/thawed`], { timeoutMs: 20_000, reject: false })).timedOut,
    ).toBe(false);
    expect((await vm.sh(`ls -A ${destination}`)).stdout.trim()).toBe('');
    expect((await vm.sh(`ls ${stateDir}/journal/*.jsonl 2>/dev/null || true`)).stdout.trim()).toBe('');
  }

  it.each([
    {
      step: 'create-snapshots (lvcreate fails after making the second of two snapshots; DSS was stopped for it)',
      dataDir: '/srv/multi/dss',
      to: '/backups/runs',
      arm: 'lvcreate',
      flags: { quiesce: 'stop', force: true },
      error: /simulated failure after creating the LV/,
    },
    {
      step: 'expose-snapshot (the thin snapshot cannot be activated)',
      dataDir: '/srv/thin/dss',
      to: '/backups/runs',
      arm: 'lvchange',
      flags: {},
      error: /simulated activation failure/,
    },
    {
      step: 'mount-snapshot (the snapshot cannot be mounted)',
      dataDir: '/srv/xfs/dss',
      to: '/backups/runs',
      arm: 'mount',
      flags: {},
      error: /simulated failure/,
    },
    {
      step: 'copy (the destination fills up)',
      dataDir: '/srv/xfs/dss',
      to: '/tiny',
      arm: undefined,
      flags: { force: true },
      error: /rsync|No space left/,
    },
  ])('undoes a failure at $step', async ({ dataDir, to, arm, flags, error }) => {
    await vm.sh(
      `rm -f ${shims}/armed/* ${shims}/count; rm -rf /tiny/lost+found${arm ? ` && touch ${shims}/armed/${arm}` : ''}`,
    );

    const result = await backupInVm(
      vm,
      { provider: 'lvm', dataDir, to, stateDir, mountRoot, ...flags },
      { pathPrefix: shims },
    );

    await vm.sh(`rm -f ${shims}/armed/*`);
    expect(result.exitCode, JSON.stringify(result)).toBe(1);
    expect(result.error?.message).toMatch(error);
    await expectUndone(dataDir, to);
  });

  it('leaves a run killed with SIGKILL during the copy to dssnap recover, which undoes it all', async () => {
    // In its own process group, killed whole like a service manager does: rsync dies with dssnap.
    const run = await vm.spawn('setsid', [
      'node',
      guestCli,
      ...['backup', '--provider', 'lvm', '--data-dir', '/srv/xfs/dss', '--to', '/backups/runs'],
      ...['--state-dir', stateDir, '--mount-root', mountRoot],
    ]);
    await vm.sh(`until grep -q " ${mountRoot}/" /proc/mounts; do sleep 0.1; done`, { timeoutMs: 400_000 });

    await vm.exec('kill', ['-KILL', '--', `-${run.pid}`]);
    const killed = await run.wait();
    const leftBehind = await dssnapLvs(vm);
    const recovered = await recoverInVm(vm, stateDir);

    expect(killed.signal).toBe('SIGKILL');
    expect(leftBehind).toHaveLength(1);
    expect(recovered).toMatchObject({ failed: 0 });
    expect(recovered.recovered).toHaveLength(1);
    await expectUndone('/srv/xfs/dss', '/backups/runs');
  });
});
