/** `dssnap prune`: apply the policy; `--dry-run` prints what is kept (and why) and what would go. */
import { type PruneResult, policyOf, pruneBackups } from '../../catalog/prune.js';
import { DssnapError, ExitCode } from '../../errors.js';
import type { PruneArgs } from '../commands/prune.js';
import { loggerFor, providerSettingsFrom } from '../context.js';
import { printJson, reportFailure } from '../output.js';

export async function handlePrune(argv: PruneArgs): Promise<number> {
  const log = loggerFor(argv);
  try {
    if (!argv.to && !argv.provider && !argv.dataDir) {
      throw new DssnapError(
        'USAGE',
        'Nothing to prune: give --to (a backup destination), --data-dir (its snapshot-only backups) and/or --provider',
        { hint: "e.g. 'dssnap prune --to /backups/dss --keep-daily 7 --dry-run'" },
      );
    }
    const policy = policyOf(argv);
    const result = await pruneBackups({
      ...(argv.to ? { to: argv.to } : {}),
      stateDir: argv.stateDir,
      ...(argv.dataDir ? { dataDir: argv.dataDir } : {}),
      policy,
      ...(argv.timeZone ? { timeZone: argv.timeZone } : {}),
      dryRun: argv.dryRun ?? false,
      ...(argv.provider ? { provider: argv.provider } : {}),
      providerSettings: providerSettingsFrom(argv, { snapshotDir: argv.snapshotDir }),
      ...(argv.sshCommand ? { sshCommand: argv.sshCommand } : {}),
      log,
    });
    const exitCode = result.failed > 0 ? ExitCode.failed : ExitCode.ok;
    if (argv.json) printJson({ ok: exitCode === ExitCode.ok, exitCode, ...result });
    else process.stdout.write(describePrune(result));
    return exitCode;
  } catch (error) {
    return reportFailure(error, argv, log);
  }
}

export function describePrune(result: PruneResult): string {
  const lines: string[] = [];
  for (const group of result.groups) {
    lines.push(
      `${group.dataDir}: keep ${group.keep.length}, ${result.dryRun ? 'would remove' : 'remove'} ${group.remove.length}`,
    );
    for (const item of group.keep)
      lines.push(`  keep    ${item.id}  ${item.time}  ${item.reasons.join('; ')}`);
    for (const item of group.remove) {
      const state = result.dryRun ? 'would remove' : item.removed ? 'removed' : `FAILED: ${item.error}`;
      lines.push(
        `  remove  ${item.id}  ${item.time}  ${state}${item.parts.length > 0 ? ` (${item.parts.join(', ')})` : ''}`,
      );
    }
  }
  if (result.groups.length === 0) lines.push('No backups.');
  return `${lines.join('\n')}\n`;
}
