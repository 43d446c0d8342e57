/** `dssnap plan`: preflight and the steps a backup would take, with what each exclusion class leaves out. */
import { planBackup } from '../../backup/backup.js';
import { measureExclusions } from '../../dss/exclusions.js';
import { formatBytes } from '../../duration.js';
import { backupOptionsFrom, loggerFor } from '../context.js';
import { type GlobalArgs, printJson, reportFailure } from '../output.js';

export async function handlePlan(argv: GlobalArgs & Record<string, unknown>): Promise<number> {
  const log = loggerFor(argv);
  try {
    const options = backupOptionsFrom(argv);
    const plan = await planBackup(options, { log });
    const pre = plan.preflight;
    const excluded = await measureExclusions(pre.dataDir.path, pre.exclusions);
    if (argv.json) {
      printJson({
        ok: true,
        dataDir: pre.dataDir,
        mode: pre.mode,
        provider: pre.provider?.id,
        quiesce: pre.quiesce,
        volumes: pre.volumes,
        previousGeneration: pre.previousGeneration,
        estimatedBytes: pre.estimatedBytes,
        exclusions: { ...pre.exclusions, measured: excluded },
        steps: plan.steps,
      });
      return 0;
    }
    const out: string[] = [
      `Plan for a backup of ${pre.dataDir.path} (DSS ${pre.dataDir.version.productVersion}, ${pre.dataDir.nodeType} node)`,
      `  mode ${pre.mode}${pre.provider ? ` via ${pre.provider.id}` : ''}, quiesce ${pre.quiesce}`,
    ];
    for (const v of pre.volumes) out.push(`  volume ${v.id} (${v.fsType}) mounted at ${v.mountPoint}`);
    if (pre.estimatedBytes !== undefined) out.push(`  to copy: about ${formatBytes(pre.estimatedBytes)}`);
    if (pre.previousGeneration)
      out.push(`  incremental: hard-linked to generation ${pre.previousGeneration}`);
    out.push('', 'Steps (nothing has been done):');
    plan.steps.forEach((step, index) => {
      out.push(`  ${String(index + 1).padStart(2)}. ${step.action === 'undo' ? 'undo: ' : ''}${step.title}`);
    });
    out.push('', 'Excluded:');
    if (excluded.length === 0) out.push('  nothing by class');
    for (const m of excluded) {
      out.push(
        `  ${m.class.padEnd(6)} ${m.folder.padEnd(18)} ${m.exists ? `${formatBytes(m.bytes)}, ${m.files} files` : '(absent)'}`,
      );
    }
    const userPatterns = pre.exclusions.patterns.filter((p) => !excluded.some((m) => `/${m.folder}/` === p));
    for (const p of userPatterns) out.push(`  pattern ${p}`);
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  } catch (error) {
    return reportFailure(error, argv, log);
  }
}
