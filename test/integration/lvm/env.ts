/**
 * What the LVM suites share (test/integration/lvm.test.ts): one VM booted once, a DATA_DIR archive made
 * on the host, and dssnap's modules loaded in the guest agent. Each suite takes a scratch disk of its
 * own for its volume group, so suites that break things (kill runs, fill VGs) do not touch each other.
 */
import type { Vm } from '../../vm/vm.js';

export interface LvmTestEnv {
  vm: Vm;
  /** A small generated DATA_DIR as a tar in the shared dir (installDataDir unpacks it in the guest). */
  archive: string;
  /** Resolves once the agent has loaded dssnap's backup code (Node is slow under TCG: load it once). */
  warm: Promise<void>;
  /**
   * Register a suite's set-up (volumes, DATA_DIRs) at collection time. Once the VM is up, every set-up
   * runs in turn while the agent warms up; the returned function resolves when this one is done.
   */
  setUp(step: () => Promise<void>): () => Promise<void>;
}

export const mountRoot = '/run/dssnap';
export const stateDir = '/var/lib/dssnap';
/** The real tools the PATH shims stand in front of (test/vm/guest-shims.ts). */
export const realTools = {
  rsync: '/usr/bin/rsync',
  lvcreate: '/usr/sbin/lvcreate',
  lvchange: '/usr/sbin/lvchange',
  mount: '/usr/bin/mount',
} as const;
