/**
 * A DSS host inside the test VM: a generated DATA_DIR (made on the host, where Node is fast, and carried
 * over as a tar through the shared dir), its `bin/dss` run as `nobody`, the `dssnap` CLI run as a user
 * would, and trees brought back to the host to be compared byte for byte with `compareTrees`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { generateDataDir } from '../fixtures/generate-data-dir.js';
import { nobody } from '../support/dss-host.js';
import { type CompareOptions, compareTrees, type Difference } from '../support/tree-compare.js';
import type { GuestBackupResult, GuestRunOptions } from './guest-backup.js';
import type { GuestResult } from './protocol.js';
import { projectDir, type Vm } from './vm.js';

export const guestCli = join(projectDir, 'dist', 'src', 'cli', 'main.js');
const tarFlags = ['--xattrs', "--xattrs-include='*'", '--acls', '--numeric-owner'];

/**
 * Generate a small DATA_DIR on the host (owner nobody) and leave it as a tar in the shared dir.
 * Returns the tar's path (the same in the guest).
 */
export async function dataDirArchive(
  vm: Vm,
  options: { files?: number; bytes?: number; seed?: number } = {},
): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'dssnap-vm-datadir-'));
  try {
    const dir = join(work, 'dss');
    await generateDataDir({
      dir,
      files: options.files ?? 250,
      bytes: options.bytes ?? 2_000_000,
      seed: options.seed ?? 1,
      owner: nobody,
    });
    const archive = join(vm.shared, `datadir-${options.seed ?? 1}.tar`);
    await execa('tar', [
      '--xattrs',
      '--xattrs-include=*',
      '--acls',
      '--numeric-owner',
      '-cpf',
      archive,
      '-C',
      dir,
      '.',
    ]);
    return archive;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Unpack a DATA_DIR archive at `dir` in the guest (created, owned by nobody like the archive's root). */
export async function installDataDir(vm: Vm, archive: string, dir: string): Promise<void> {
  // bin/dss refuses a DATA_DIR that moved without installer.sh -u: record where this one lives.
  await vm.sh(
    `mkdir -p ${dir} && tar ${tarFlags.join(' ')} -xpf ${archive} -C ${dir} && printf %s ${dir} > ${dir}/install-support/expected-dip-home.txt`,
  );
}

/** `bin/dss <action>` as the DATA_DIR owner, as dssnap does. */
export function dss(vm: Vm, dataDir: string, action: 'start' | 'stop' | 'status'): Promise<GuestResult> {
  return vm.exec('runuser', ['-u', 'nobody', '--', join(dataDir, 'bin', 'dss'), action], {
    reject: action !== 'status',
    timeoutMs: 120_000,
  });
}

export async function dssState(vm: Vm, dataDir: string): Promise<'running' | 'stopped'> {
  return (await dss(vm, dataDir, 'status')).exitCode === 0 ? 'running' : 'stopped';
}

/** Run `dssnap ARGS` in the guest; never rejects (the exit code is part of what tests check). */
export function dssnapInVm(
  vm: Vm,
  args: readonly string[],
  options: { timeoutMs?: number; pathPrefix?: string } = {},
): Promise<GuestResult> {
  return vm.exec('node', [guestCli, ...args], {
    env: { DSSNAP_LOG_LEVEL: 'warn', ...guestPath(options.pathPrefix) },
    reject: false,
    timeoutMs: options.timeoutMs ?? 300_000,
  });
}

/** PATH for a guest command with `prefix` (fault shims) first. */
export function guestPath(prefix: string | undefined): { PATH?: string } {
  return prefix ? { PATH: `${prefix}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` } : {};
}

/** Parse the `--json` result a dssnap command printed. */
export function jsonOf<T = Record<string, unknown>>(result: GuestResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`dssnap printed no JSON (exit ${result.exitCode}):\n${result.stdout}\n${result.stderr}`);
  }
}

/** A copy of the guest tree `dir`, on the host (owners, modes, links, xattrs and ACLs kept), for compareTrees. */
export async function treeToHost(vm: Vm, dir: string): Promise<{ path: string; dispose(): Promise<void> }> {
  const archive = join(vm.shared, `tree-${Date.now()}-${Math.random().toString(16).slice(2, 8)}.tar`);
  await vm.sh(`tar ${tarFlags.join(' ')} -cpf ${archive} -C ${dir} .`);
  const path = await mkdtemp(join(tmpdir(), 'dssnap-vm-tree-'));
  await execa('tar', [
    '--xattrs',
    '--xattrs-include=*',
    '--acls',
    '--numeric-owner',
    '-xpf',
    archive,
    '-C',
    path,
  ]);
  await rm(archive, { force: true });
  return { path, dispose: () => rm(path, { recursive: true, force: true }) };
}

/** Differences between two guest trees, compared on the host. */
export async function compareGuestTrees(
  vm: Vm,
  a: string,
  b: string,
  options: CompareOptions = {},
): Promise<Difference[]> {
  const [treeA, treeB] = await Promise.all([treeToHost(vm, a), treeToHost(vm, b)]);
  try {
    return await compareTrees(treeA.path, treeB.path, options);
  } finally {
    await Promise.all([treeA.dispose(), treeB.dispose()]);
  }
}

/** `dssnap backup` in the agent's warm process (guest-backup.ts); `flags` as backupOptionsSchema names them. */
export function backupInVm(
  vm: Vm,
  flags: Record<string, unknown>,
  options: GuestRunOptions = {},
): Promise<GuestBackupResult> {
  return vm.call<GuestBackupResult>('test/vm/guest-backup.js', 'backup', flags, options);
}

/** `dssnap recover` in the agent's process. */
export function recoverInVm(vm: Vm, stateDir: string): Promise<{ recovered: string[]; failed: number }> {
  return vm.call('test/vm/guest-backup.js', 'recover', stateDir);
}
