/**
 * Failures of an LVM snapshot backup: a failure at each step that changes the world is undone (no
 * snapshot LV left, nothing mounted, filesystem thawed, DSS running, no partial copy, journal closed),
 * and a run killed with SIGKILL during the copy is undone by `dssnap recover`. Faults are real (a full
 * destination) or injected at the narrowest seam: a PATH shim that runs the real LVM or mount command
 * and then fails, or fails before it, exactly as a flaky host would.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  backupInVm,
  dss,
  dssState,
  guestCli,
  guestPath,
  installDataDir,
  recoverInVm,
} from '../../vm/dss-guest.js';
import { type GuestShims, installShims } from '../../vm/guest-shims.js';
import { dssnapLvs, setUpVolumes } from '../../vm/lvm-guest.js';
import { type LvmTestEnv, mountRoot, realTools, stateDir } from './env.js';

const vg = 'faultvg';

export function lvmFaultTests(env: LvmTestEnv, disk: string): void {
  describe('faults of snapshot backups are undone', () => {
    let shims: GuestShims;

    // Made while the VM warms up, before any suite starts (lvm.test.ts).
    const ready = env.setUp(async () => {
      const { vm } = env;
      await setUpVolumes(
        vm,
        vg,
        disk,
        [
          { name: 'backups', sizeMb: 128, fsType: 'ext4', mountPoint: '/faults/backups' },
          { name: 'tiny', sizeMb: 4, fsType: 'ext4', mountPoint: '/faults/tiny' },
          { name: 'xfsdata', sizeMb: 320, fsType: 'xfs', mountPoint: '/faults/xfs' },
          { name: 'thindata', sizeMb: 128, fsType: 'ext4', mountPoint: '/faults/thin', thin: true },
          { name: 'main', sizeMb: 320, fsType: 'xfs', mountPoint: '/faults/multi' },
          { name: 'datasets', sizeMb: 32, fsType: 'ext4', mountPoint: '/faults/multi/dss/managed_datasets' },
        ],
        64,
      );
      for (const dir of ['/faults/xfs/dss', '/faults/thin/dss', '/faults/multi/dss']) {
        await installDataDir(vm, env.archive, dir);
      }

      // More than the 4 MiB destination holds: that copy fails for real.
      await vm.sh(
        'dd if=/dev/zero of=/faults/xfs/dss/managed_datasets/big.bin bs=1M count=8 status=none && mkdir -p /faults/backups/runs && rm -rf /faults/tiny/lost+found',
      );
      shims = await installShims(vm, '/root/shims-faults', realTools);
    });
    beforeAll(async () => {
      await ready();
      await env.warm;
    });

    /** What a user checks after a failed run: nothing of it is left, DSS as it was, writes go through. */
    async function expectUndone(dataDir: string, destination: string, dssRunning = false): Promise<void> {
      const { vm } = env;
      expect(await dssnapLvs(vm, vg)).toEqual([]);
      expect((await vm.sh(`grep -c " ${mountRoot}/" /proc/mounts || true`)).stdout.trim()).toBe('0');
      expect(await dssState(vm, dataDir)).toBe(dssRunning ? 'running' : 'stopped');
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
        dataDir: '/faults/multi/dss',
        to: '/faults/backups/runs',
        tool: 'lvcreate',
        hook: `n=$(cat /root/shims-faults/count-lvcreate 2>/dev/null || echo 0); n=$((n + 1)); echo $n > /root/shims-faults/count-lvcreate
if [ "$n" -ge 2 ]; then ${realTools.lvcreate} "$@"; echo "lvcreate: simulated failure after creating the LV" >&2; exit 5; fi`,
        flags: { quiesce: 'stop', force: true },
        dssRunning: true,
        error: /simulated failure after creating the LV/,
      },
      {
        step: 'expose-snapshot (the thin snapshot cannot be activated)',
        dataDir: '/faults/thin/dss',
        to: '/faults/backups/runs',
        tool: 'lvchange',
        hook: 'case "$*" in *"--activate y"*) echo "lvchange: simulated activation failure" >&2; exit 5;; esac',
        dssRunning: false,
        flags: {},
        error: /simulated activation failure/,
      },
      {
        step: 'mount-snapshot (the snapshot cannot be mounted)',
        dataDir: '/faults/xfs/dss',
        to: '/faults/backups/runs',
        tool: 'mount',
        hook: `case "$*" in *${mountRoot}/*) echo "mount: simulated failure" >&2; exit 32;; esac`,
        dssRunning: false,
        flags: {},
        error: /simulated failure/,
      },
      {
        step: 'copy (the destination fills up)',
        dataDir: '/faults/xfs/dss',
        to: '/faults/tiny',
        tool: undefined,
        hook: '',
        dssRunning: false,
        flags: { force: true },
        error: /rsync|No space left/,
      },
    ])('undoes a failure at $step', async ({ dataDir, to, tool, hook, flags, error, dssRunning }) => {
      if (tool) await shims.hook(tool, hook);
      // DSS runs only where the run stops it (quiesce stop), to be started again whatever fails: the fake
      // DSS's backend forks twice every 100 ms, which costs a TCG guest dearly.
      if (dssRunning) await dss(env.vm, dataDir, 'start');

      const result = await backupInVm(
        env.vm,
        { provider: 'lvm', dataDir, to, stateDir, mountRoot, ...flags },
        { pathPrefix: shims.dir },
      );

      await shims.clear();
      expect(result.exitCode, JSON.stringify(result)).toBe(1);
      expect(result.error?.message).toMatch(error);
      await expectUndone(dataDir, to, dssRunning);
      if (dssRunning) await dss(env.vm, dataDir, 'stop');
    });

    it('leaves a run killed with SIGKILL during the copy to dssnap recover, which undoes it all', async () => {
      const { vm } = env;
      // The copy starts and never ends: the kill lands during it, whatever the machine's speed.
      await shims.hook('rsync', 'touch /root/shims-faults/copying\nexec sleep 600');
      // In its own process group, killed whole like a service manager does: rsync dies with dssnap.
      const run = await vm.spawn(
        'setsid',
        [
          'node',
          guestCli,
          ...['backup', '--provider', 'lvm', '--data-dir', '/faults/xfs/dss', '--to', '/faults/backups/runs'],
          ...['--state-dir', stateDir, '--mount-root', mountRoot],
        ],
        { env: guestPath(shims.dir) },
      );
      await vm.sh('until [ -e /root/shims-faults/copying ]; do sleep 0.1; done', { timeoutMs: 240_000 });

      await vm.exec('kill', ['-KILL', '--', `-${run.pid}`]);
      const killed = await run.wait();
      await shims.clear();
      const leftBehind = await dssnapLvs(vm, vg);
      const recovered = await recoverInVm(vm, stateDir);

      expect(killed.signal).toBe('SIGKILL');
      expect(leftBehind).toHaveLength(1);
      expect(recovered).toMatchObject({ failed: 0 });
      expect(recovered.recovered).toHaveLength(1);
      await vm.sh('rm -f /root/shims-faults/copying');
      await expectUndone('/faults/xfs/dss', '/faults/backups/runs');
    });
  });
}
