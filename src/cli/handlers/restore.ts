/** `dssnap restore`: run, report (with the follow-up of a restore elsewhere), exit with the documented code. */
import { optionsFromEnv, readConfigFile, resolveOptions } from '../../config.js';
import { formatDuration } from '../../duration.js';
import { type RestoreOptions, restoreOptionsSchema } from '../../restore/options.js';
import { type RestoreResult, runRestore } from '../../restore/restore.js';
import { backupFlags } from '../backup-options.js';
import { loggerFor } from '../context.js';
import { type GlobalArgs, printJson, reportFailure } from '../output.js';
import { onInterrupt } from './backup.js';

export async function handleRestore(argv: GlobalArgs & Record<string, unknown>): Promise<number> {
  const log = loggerFor(argv);
  const controller = new AbortController();
  const removeSignalHandlers = onInterrupt(controller, log);
  try {
    const options: RestoreOptions = resolveOptions(restoreOptionsSchema, {
      ...(argv.config ? { file: readConfigFile(argv.config), filePath: argv.config } : {}),
      env: optionsFromEnv(restoreOptionsSchema),
      flags: backupFlags(argv, Object.keys(restoreOptionsSchema.shape)),
    });
    const result = await runRestore(options, { log, signal: controller.signal });
    if (argv.json) printJson({ ok: true, ...result });
    else process.stdout.write(describeRestore(result));
    return result.exitCode;
  } catch (error) {
    return reportFailure(error, argv, log);
  } finally {
    removeSignalHandlers();
  }
}

export function describeRestore(r: RestoreResult): string {
  const lines = [
    `Restored ${r.source} into ${r.dataDir}`,
    `  previous   ${r.movedAside ? `kept aside at ${r.movedAside}` : 'nothing was there'}`,
    `  checked    ${r.verifiedEntries > 0 ? `${r.verifiedEntries} entries match the backup's file index` : 'layout and version (no file index recorded)'}`,
  ];
  if (r.database) {
    lines.push(
      `  database   ${r.database.database} restored${r.database.safetyDump ? ` (its previous content dumped to ${r.database.safetyDump})` : ''}`,
    );
  }
  if (r.installer)
    lines.push(`  installer  ${r.installer.command.join(' ')} (${formatDuration(r.installer.durationMs)})`);
  lines.push(`  DSS        ${r.dssStarted ? 'started' : 'not started (--no-start)'}`);
  lines.push(`  duration   ${formatDuration(r.durationMs)}`);
  for (const w of r.warnings) lines.push(`  warning    ${w}`);
  if (r.followUp.length > 0) {
    lines.push('', 'Follow-up (DSS migration documentation):');
    for (const step of r.followUp) lines.push(`  - ${step}`);
  }
  return `${lines.join('\n')}\n`;
}
