/**
 * The LVM provider on real LVM. This machine's kernel has no device-mapper, so everything runs inside
 * one qemu VM (test/vm, DESIGN.md §3) booted once for all LVM suites: under TCG a boot, and Node loading
 * dssnap in the guest, cost more than most scenarios. Each suite has its own scratch disk and volume
 * group, so a suite that kills runs or fills a VG leaves the others alone. The suites (./lvm/) are:
 * backups (XFS, ext4, thin, two LVs, quiesce refusals, overflow during the copy), faults (a failure at
 * each step undone, SIGKILL then recover), retention (rollback point, list, cleanup, doctor, bad input)
 * and the shared provider contract. Fails, never skips, when qemu, the VM assets or root are missing.
 */
import { afterAll, beforeAll, describe, vi } from 'vitest';
import { dataDirArchive } from '../vm/dss-guest.js';
import { bootVm } from '../vm/vm.js';
import { lvmBackupTests } from './lvm/backups.js';
import { lvmContractTests } from './lvm/contract.js';
import type { LvmTestEnv } from './lvm/env.js';
import { lvmFaultTests } from './lvm/faults.js';
import { lvmRetentionTests } from './lvm/retention.js';

// Real LVM under TCG on a shared 2-core machine: a backup run takes tens of seconds, not milliseconds.
vi.setConfig({ testTimeout: 300_000, hookTimeout: 600_000 });

const setUps: Array<() => Promise<void>> = [];
let setUpsDone: Array<Promise<void>> = [];
const env = {
  setUp(step) {
    const index = setUps.push(step) - 1;
    return () => setUpsDone[index] ?? Promise.reject(new Error('The LVM test VM did not boot'));
  },
} as LvmTestEnv;

describe('lvm provider on real LVM (one VM for every suite)', () => {
  beforeAll(async () => {
    env.vm = await bootVm({ disksMb: [2048, 2048, 2048, 1024] });
    // dssnap's modules load in the agent while the host makes the DATA_DIR and the suites their volumes.
    env.warm = env.vm
      .call<void>('test/vm/guest-backup.js', 'backup', { dataDir: '/nonexistent' })
      .then(() => undefined);
    env.warm.catch(() => undefined);
    env.archive = await dataDirArchive(env.vm, { files: 150, bytes: 1_000_000 });
    // One set-up after the other (LVM serialises them anyway), each one whatever the previous one did.
    let chain: Promise<void> = Promise.resolve();
    setUpsDone = setUps.map((step) => {
      chain = chain.catch(() => undefined).then(step);
      chain.catch(() => undefined);
      return chain;
    });
  });

  afterAll(async () => {
    await env.vm?.dispose();
  });

  lvmBackupTests(env, '/dev/vda');
  lvmFaultTests(env, '/dev/vdb');
  lvmRetentionTests(env, '/dev/vdc');
  lvmContractTests(env, '/dev/vdd');
});
