/**
 * Installing and removing schedules. Files are written under a root directory (`/` on a real host, a
 * temp dir in tests), atomically (temp file + rename). On a real host with systemd running, the timer is
 * enabled and started with systemctl; cron picks up /etc/cron.d files by itself.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { DssnapError } from '../errors.js';
import { run } from '../host/exec.js';
import type { Logger } from '../log.js';
import {
  type InitSystem,
  renderSchedule,
  type ScheduleFile,
  type ScheduleSpec,
  schedulePaths,
} from './units.js';

export interface ScheduleTarget {
  /** Where `/` of the target system is. Default `/`. */
  root?: string;
  /** Default: systemd when `<root>/run/systemd/system` exists (systemd is running), cron otherwise. */
  init?: InitSystem;
  log?: Logger;
}

export interface InstalledSchedule {
  init: InitSystem;
  /** The files written, at their paths under the root. */
  files: ScheduleFile[];
  /** True when systemctl enabled and started the timer. */
  activated: boolean;
}

/** systemd when it runs on the target (`/run/systemd/system` exists, as sd_booted() checks), cron otherwise. */
export function detectInitSystem(root = '/'): InitSystem {
  return existsSync(join(root, 'run', 'systemd', 'system')) ? 'systemd' : 'cron';
}

/** The files `spec` would be written as, paths under `root`. Changes nothing. */
export function planSchedule(spec: ScheduleSpec, target: ScheduleTarget = {}): InstalledSchedule {
  const root = resolve(target.root ?? '/');
  const init = target.init ?? detectInitSystem(root);
  const files = renderSchedule(spec, init).map((file) => ({ ...file, path: join(root, file.path) }));
  return { init, files, activated: false };
}

/**
 * Write the schedule's files (replacing an earlier schedule of the same name, under either init system)
 * and create the log directory. With systemd running on the real root, enable and start the timer.
 * Returns what was written. Throws COMMAND_FAILED when systemctl fails (the files stay, so that
 * `systemctl status` can tell why).
 */
export async function installSchedule(
  spec: ScheduleSpec,
  target: ScheduleTarget = {},
): Promise<InstalledSchedule> {
  const root = resolve(target.root ?? '/');
  const planned = planSchedule(spec, { ...target, root });
  // A schedule of the same name under the other init system would run twice.
  await removeScheduleFiles(spec.name, root, planned.init === 'systemd' ? 'cron' : 'systemd', target);
  for (const file of planned.files) await writeAtomically(file);
  await mkdir(join(root, dirname(spec.logFile)), { recursive: true, mode: 0o750 });
  let activated = false;
  if (planned.init === 'systemd' && root === '/' && detectInitSystem('/') === 'systemd') {
    await run('systemctl', ['daemon-reload']);
    await run('systemctl', ['enable', '--now', `dssnap-${spec.name}.timer`]);
    activated = true;
  }
  target.log?.info({ name: spec.name, init: planned.init, activated }, 'Schedule installed');
  return { ...planned, activated };
}

/**
 * Remove the schedule `name` (its unit files and cron.d entry, whichever exist; the timer stopped and
 * disabled first when systemd runs on the real root). Returns the removed paths. Throws NOT_FOUND,
 * listing the schedules that exist, when there is nothing of that name.
 */
export async function removeSchedule(name: string, target: ScheduleTarget = {}): Promise<string[]> {
  const root = resolve(target.root ?? '/');
  const removed = [
    ...(await removeScheduleFiles(name, root, 'systemd', target)),
    ...(await removeScheduleFiles(name, root, 'cron', target)),
  ];
  if (removed.length === 0) {
    const existing = await listSchedules(root);
    throw new DssnapError('NOT_FOUND', `No schedule named '${name}' under ${root}`, {
      hint:
        existing.length > 0
          ? `Existing schedules: ${existing.join(', ')}.`
          : 'There are no dssnap schedules on this host.',
      details: { name, existing },
    });
  }
  target.log?.info({ name, removed }, 'Schedule removed');
  return removed;
}

/** Names of the dssnap schedules under `root` (systemd timers and cron.d entries), sorted. */
export async function listSchedules(root = '/'): Promise<string[]> {
  const names = new Set<string>();
  for (const [dir, pattern] of [
    [join(root, 'etc/systemd/system'), /^dssnap-(.+)\.timer$/],
    [join(root, 'etc/cron.d'), /^dssnap-(.+)$/],
  ] as const) {
    for (const entry of await readdir(dir).catch(() => [] as string[])) {
      const match = pattern.exec(entry);
      if (match) names.add(match[1]!);
    }
  }
  return [...names].sort();
}

async function removeScheduleFiles(
  name: string,
  root: string,
  init: InitSystem,
  target: ScheduleTarget,
): Promise<string[]> {
  const paths = schedulePaths(name)[init].map((path) => join(root, path));
  const present = paths.filter((path) => existsSync(path));
  if (present.length === 0) return [];
  if (init === 'systemd' && root === '/' && detectInitSystem('/') === 'systemd') {
    await run('systemctl', ['disable', '--now', `dssnap-${name}.timer`]).catch((error: unknown) =>
      target.log?.warn({ name, err: error }, 'systemctl disable failed; removing the files anyway'),
    );
  }
  for (const path of present) await rm(path, { force: true });
  if (init === 'systemd' && root === '/' && detectInitSystem('/') === 'systemd') {
    await run('systemctl', ['daemon-reload']);
  }
  return present;
}

async function writeAtomically(file: ScheduleFile): Promise<void> {
  await mkdir(dirname(file.path), { recursive: true, mode: 0o755 });
  const temporary = join(dirname(file.path), `.${Date.now()}-${process.pid}.tmp`);
  await writeFile(temporary, file.content, { mode: file.mode });
  await rename(temporary, file.path);
}
