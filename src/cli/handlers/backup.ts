/** `dssnap backup`: run, report, exit with the documented code. SIGINT/SIGTERM undo the run (exit 130). */
import { runBackup } from '../../backup/backup.js';
import type { Manifest } from '../../catalog/manifest.js';
import { formatBytes, formatDuration } from '../../duration.js';
import type { Logger } from '../../log.js';
import { backupOptionsFrom, loggerFor } from '../context.js';
import { type GlobalArgs, printJson, reportFailure } from '../output.js';
import { createProgressReporter } from '../progress.js';

export async function handleBackup(argv: GlobalArgs & Record<string, unknown>): Promise<number> {
  const log = loggerFor(argv);
  const controller = new AbortController();
  const removeSignalHandlers = onInterrupt(controller, log);
  const progress = createProgressReporter(!argv.json);
  try {
    const options = backupOptionsFrom(argv);
    const result = await runBackup(options, { log, signal: controller.signal, onProgress: progress.update });
    progress.stop();
    if (argv.json)
      printJson({
        ok: true,
        exitCode: result.exitCode,
        manifestPath: result.manifestPath,
        manifest: result.manifest,
      });
    else process.stdout.write(describeManifest(result.manifest));
    return result.exitCode;
  } catch (error) {
    progress.stop();
    return reportFailure(error, argv, log);
  } finally {
    removeSignalHandlers();
  }
}

/** First SIGINT/SIGTERM aborts the run (which then undoes itself); later ones are ignored with a note. */
export function onInterrupt(controller: AbortController, log: Logger): () => void {
  const handler = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      log.warn(
        { signal },
        'Already stopping: waiting for the undo to finish (DSS is restarted, nothing is left frozen)',
      );
      return;
    }
    log.warn({ signal }, 'Interrupted: undoing the run');
    controller.abort(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

export function describeManifest(m: Manifest): string {
  const lines = [
    `Backup ${m.id} ${m.phase === 'completed' ? 'completed' : 'completed with warnings'}`,
    `  data dir   ${m.dataDir} (DSS ${m.dss.productVersion}, ${m.dss.nodeType} node)`,
    `  mode       ${m.mode}${m.provider ? ` via ${m.provider}` : ''}, quiesce ${m.mode === 'cold' ? 'stop (whole copy)' : m.quiesce}`,
    `  pause      ${formatDuration(m.pauseMs)}`,
  ];
  if (m.copy) {
    lines.push(
      `  copy       ${m.copy.location}`,
      `             ${m.stats.files} entries, ${formatBytes(m.stats.totalBytes)}, ${formatBytes(m.stats.transferredBytes)} written${m.copy.basedOn ? ` (linked to ${m.copy.basedOn})` : ''}`,
    );
  }
  for (const s of m.snapshots)
    lines.push(`  snapshot   ${s.id} (${s.provider})${s.retained ? ' retained' : ' deleted'}`);
  if (m.exclusions.classes.length > 0) lines.push(`  excluded   ${m.exclusions.classes.join(', ')}`);
  lines.push(`  duration   ${formatDuration(m.durationMs)}`);
  for (const w of m.warnings) lines.push(`  warning    ${w}`);
  return `${lines.join('\n')}\n`;
}
