/** `dssnap verify`: one backup or all; exit 0 when all are sound, 2 when some could not be checked, 1 otherwise. */
import { resolve } from 'node:path';
import { type CatalogedBackup, findBackup, listBackups } from '../../catalog/find.js';
import { type BackupVerification, verifyBackup, worstStatus } from '../../catalog/verify.js';
import { formatDuration } from '../../duration.js';
import { DssnapError, ExitCode, type ExitCodeValue } from '../../errors.js';
import type { VerifyArgs } from '../commands/verify.js';
import { loggerFor, providerSettingsFrom } from '../context.js';
import { printJson, reportFailure } from '../output.js';
import { onInterrupt } from './backup.js';

export async function handleVerify(argv: VerifyArgs): Promise<number> {
  const log = loggerFor(argv);
  const controller = new AbortController();
  const removeSignalHandlers = onInterrupt(controller, log);
  try {
    if (!argv.backupId === !argv.all) {
      throw new DssnapError('USAGE', 'Name a backup id to verify, or --all', {
        hint: "e.g. 'dssnap verify --all --to /backups/dss'",
      });
    }
    const location = { ...(argv.to ? { to: argv.to } : {}), stateDir: argv.stateDir };
    const backups: CatalogedBackup[] = argv.backupId
      ? [await findBackup(argv.backupId, location)]
      : await listBackups(location, argv.dataDir ? resolve(argv.dataDir) : undefined);
    const reports: BackupVerification[] = [];
    for (const backup of backups) {
      const report = await verifyBackup(backup, {
        stateDir: argv.stateDir,
        restoreTest: argv.restoreTest ?? false,
        ...(argv.tempDir ? { tempDir: argv.tempDir } : {}),
        providerSettings: providerSettingsFrom(argv, { snapshotDir: argv.snapshotDir }),
        signal: controller.signal,
        log,
      });
      reports.push(report);
      if (!argv.json) process.stdout.write(describeVerification(report));
    }
    const worst = worstStatus(reports);
    const exitCode: ExitCodeValue =
      worst === 'ok'
        ? ExitCode.ok
        : worst === 'unverifiable'
          ? ExitCode.completedWithWarnings
          : ExitCode.failed;
    if (argv.json) printJson({ ok: exitCode === ExitCode.ok, exitCode, status: worst, backups: reports });
    else if (reports.length === 0) process.stdout.write('No backups.\n');
    else if (reports.length > 1) {
      const count = (status: string) => reports.filter((r) => r.status === status).length;
      process.stdout.write(
        `${reports.length} backups: ${count('ok')} ok, ${count('damaged')} damaged, ${count('incomplete')} incomplete, ${count('unverifiable')} unverifiable\n`,
      );
    }
    return exitCode;
  } catch (error) {
    return reportFailure(error, argv, log);
  } finally {
    removeSignalHandlers();
  }
}

export function describeVerification(r: BackupVerification): string {
  const head = `${r.id}  ${r.status.toUpperCase()}  (${formatDuration(r.durationMs)})`;
  const details: string[] = [];
  if (r.copy?.differences)
    details.push(`checked ${r.copy.differences.counts.checked} entries of ${r.copy.location}`);
  if (r.database?.ok) details.push(`database dump readable (${r.database.entries} entries)`);
  if (r.restoreTest) details.push(`restore test ${r.restoreTest.ok ? 'passed' : 'FAILED'}`);
  return `${[head, ...details.map((d) => `  ${d}`), ...r.problems.map((p) => `  problem: ${p}`)].join('\n')}\n`;
}
