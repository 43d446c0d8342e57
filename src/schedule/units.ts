/**
 * The files a schedule is made of: a systemd service + timer pair, or one cron.d entry where systemd is
 * absent. Both run the same command line (absolute node and CLI paths: cron's PATH is minimal), append
 * its output to a log file, and never run twice at once (a oneshot service is not started again while
 * it runs; the cron entry holds an flock). Exit code 2 (done with warnings) counts as success.
 */
import { posix } from 'node:path';
import { shellQuote } from '../copy/destination.js';
import { DssnapError } from '../errors.js';
import { type CronSchedule, toOnCalendar } from './cron.js';

export type InitSystem = 'systemd' | 'cron';

export interface ScheduleSpec {
  /** `[A-Za-z0-9_-]`, becomes `dssnap-<name>` (unit and cron.d file names). */
  name: string;
  cron: CronSchedule;
  /** The dssnap arguments to run, starting with the command: `['backup', '--data-dir', …]`. */
  args: readonly string[];
  /** Absolute path of the node binary. */
  node: string;
  /** Absolute path of dssnap's CLI entry point (`dist/src/cli/main.js`). */
  cli: string;
  /** Absolute path of the log file the runs append to. */
  logFile: string;
}

/** A file of the schedule, at its path on the target system (`/etc/cron.d/dssnap-x`). */
export interface ScheduleFile {
  path: string;
  content: string;
  mode: number;
}

export const scheduledCommands = ['backup', 'prune', 'verify'] as const;

const namePattern = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const systemdDir = '/etc/systemd/system';
const cronDir = '/etc/cron.d';
/** cron's PATH has no sbin directories: the tools dssnap runs (mount, fsfreeze) live there. */
const cronPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** `dssnap-<name>`: the unit base name and the cron.d file name. Throws USAGE for an unusable name. */
export function scheduleUnitName(name: string): string {
  if (!namePattern.test(name)) {
    throw new DssnapError('USAGE', `Invalid schedule name '${name}'`, {
      hint: 'Use letters, digits, - and _ only (at most 64, starting with a letter or digit): it becomes a systemd unit and a cron.d file name.',
      details: { name },
    });
  }
  return `dssnap-${name}`;
}

/**
 * A schedule name from a DATA_DIR path: its last component, reduced to the characters unit and cron.d
 * names allow (`/data/dss.prod` → `dss-prod`). Pure.
 */
export function nameFromDataDir(dataDir: string): string {
  const base = posix.basename(dataDir.replace(/\/+$/, '')) || 'root';
  return (
    base
      .replace(/[^A-Za-z0-9_-]+/g, '-')
      .replace(/^[-_]+|-+$/g, '')
      .slice(0, 64) || 'dss'
  );
}

/** Paths of every file a schedule of this name may have, under either init system. */
export function schedulePaths(name: string): { systemd: string[]; cron: string[] } {
  const unit = scheduleUnitName(name);
  return {
    systemd: [posix.join(systemdDir, `${unit}.service`), posix.join(systemdDir, `${unit}.timer`)],
    cron: [posix.join(cronDir, unit)],
  };
}

/** The files of `spec` for `init`. Pure. Throws USAGE for a bad name or command. */
export function renderSchedule(spec: ScheduleSpec, init: InitSystem): ScheduleFile[] {
  checkScheduledArgs(spec.args);
  return init === 'systemd' ? systemdUnits(spec) : cronEntry(spec);
}

function systemdUnits(spec: ScheduleSpec): ScheduleFile[] {
  const unit = scheduleUnitName(spec.name);
  const [servicePath, timerPath] = schedulePaths(spec.name).systemd as [string, string];
  const description = `dssnap ${spec.args[0]} '${spec.name}'`;
  const service = [
    `# Written by \`dssnap schedule\`; remove with \`dssnap schedule --remove --name ${spec.name}\`.`,
    '[Unit]',
    `Description=${description}`,
    'Documentation=man:systemd.timer(5)',
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${commandLine(spec).map(systemdQuote).join(' ')}`,
    // 2 = completed with warnings: the backup is complete and catalogued.
    'SuccessExitStatus=2',
    `StandardOutput=append:${spec.logFile}`,
    `StandardError=append:${spec.logFile}`,
    'Nice=10',
    'IOSchedulingClass=best-effort',
    'IOSchedulingPriority=7',
    '',
  ].join('\n');
  const timer = [
    `# Written by \`dssnap schedule\`; remove with \`dssnap schedule --remove --name ${spec.name}\`.`,
    '[Unit]',
    `Description=Timer of ${description} (cron '${spec.cron.expression}')`,
    '',
    '[Timer]',
    ...toOnCalendar(spec.cron).map((calendar) => `OnCalendar=${calendar}`),
    // A run missed while the host was down happens at the next boot.
    'Persistent=true',
    `Unit=${unit}.service`,
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ].join('\n');
  return [
    { path: servicePath, content: service, mode: 0o644 },
    { path: timerPath, content: timer, mode: 0o644 },
  ];
}

function cronEntry(spec: ScheduleSpec): ScheduleFile[] {
  const unit = scheduleUnitName(spec.name);
  const lockFile = `/run/lock/${unit}.lock`;
  // In a crontab line an unescaped % ends the command: escape it after shell quoting.
  const command = ['flock', '-n', lockFile, ...commandLine(spec)]
    .map((word) => shellQuote(word).replaceAll('%', '\\%'))
    .join(' ');
  const content = [
    `# Written by \`dssnap schedule\`; remove with \`dssnap schedule --remove --name ${spec.name}\`.`,
    'SHELL=/bin/sh',
    `PATH=${cronPath}`,
    `${spec.cron.expression} root ${command} >> ${shellQuote(spec.logFile).replaceAll('%', '\\%')} 2>&1`,
    '',
  ].join('\n');
  return [{ path: schedulePaths(spec.name).cron[0]!, content, mode: 0o644 }];
}

/** node, the CLI, JSON log lines (for the log file), then the scheduled command. */
function commandLine(spec: ScheduleSpec): string[] {
  const hasLogFormat = spec.args.some((arg) => arg === '--log-format' || arg.startsWith('--log-format='));
  return [spec.node, spec.cli, ...(hasLogFormat ? [] : ['--log-format', 'json']), ...spec.args];
}

/** Throws USAGE unless `args` start with a command dssnap can schedule. Pure. */
export function checkScheduledArgs(args: readonly string[]): void {
  const command = args[0];
  if (!command || !(scheduledCommands as readonly string[]).includes(command)) {
    throw new DssnapError(
      'USAGE',
      command
        ? `dssnap schedule cannot schedule '${command}': only ${scheduledCommands.join(', ')}`
        : 'No command to schedule: give it after --',
      {
        hint: "e.g. dssnap schedule --cron '15 6 * * 1-5' -- backup --data-dir /data/dss --to /backups/dss",
      },
    );
  }
  const bad = args.find((arg) => /[\n\r\0]/.test(arg));
  if (bad !== undefined) {
    throw new DssnapError('USAGE', 'A scheduled argument contains a line break or a NUL character', {
      details: { argument: JSON.stringify(bad) },
    });
  }
}

/**
 * Quote one word of a systemd ExecStart= line: `%` specifiers and `$` variables escaped, words with
 * blanks or quotes double-quoted with C-style escapes. Pure.
 */
export function systemdQuote(word: string): string {
  const escaped = word.replaceAll('%', '%%').replaceAll('$', '$$$$');
  if (escaped !== '' && /^[A-Za-z0-9_@+=:,./%$-]+$/.test(escaped)) return escaped;
  return `"${escaped.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}
