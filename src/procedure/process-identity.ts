/**
 * Which process owns a lock or a journal, and whether it still runs. A pid alone is not enough after
 * a crash: the host may have rebooted (pids start over) or the pid may belong to another process by
 * now, so the identity also carries the boot id and the process start time when Linux offers them.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

export interface ProcessIdentity {
  pid: number;
  hostname: string;
  /** `/proc/sys/kernel/random/boot_id`: differs after a reboot. */
  bootId?: string;
  /** Field 22 of `/proc/PID/stat` (clock ticks since boot): differs when the pid was reused. */
  startTime?: string;
}

/** The identity of this process. Never throws; the Linux-only fields are absent elsewhere. */
export function currentProcessIdentity(): ProcessIdentity {
  const identity: ProcessIdentity = { pid: process.pid, hostname: hostname() };
  const bootId = readBootId();
  const startTime = procStat(process.pid)?.startTime;
  if (bootId) identity.bootId = bootId;
  if (startTime) identity.startTime = startTime;
  return identity;
}

/**
 * True when a process with this pid exists on this host (`kill(pid, 0)`; EPERM means it exists but
 * belongs to another user). A zombie — killed, not yet reaped by its parent — counts as gone.
 */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return procStat(pid)?.state !== 'Z';
}

/**
 * True when the process described by `identity` may still run: it runs here, or it ran on another
 * host, which this host cannot check (so the caller must assume it runs). False when it is gone,
 * the host rebooted since, or its pid now belongs to a newer process.
 */
export function mayStillRun(identity: ProcessIdentity): boolean {
  if (identity.hostname !== hostname()) return true;
  const bootId = readBootId();
  if (identity.bootId && bootId && identity.bootId !== bootId) return false;
  if (!isProcessAlive(identity.pid)) return false;
  const startTime = procStat(identity.pid)?.startTime;
  return !(identity.startTime && startTime && identity.startTime !== startTime);
}

function readBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function procStat(pid: number): { state: string; startTime: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    const startTime = fields[19];
    return state && startTime ? { state, startTime } : undefined;
  } catch {
    return undefined;
  }
}
