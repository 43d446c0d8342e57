/**
 * `dssnap doctor`: everything a run needs, checked without changing anything — tools by absolute path
 * (cron's PATH lacks sbin), root, kernel features, the DATA_DIR and the provider's view of it.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { inspectDataDir } from '../../dss/layout.js';
import { DssnapError, ExitCode, errorMessage } from '../../errors.js';
import { findTool } from '../../host/exec.js';
import { detectProvider, loadProvider } from '../../provider/registry.js';
import type { DoctorArgs } from '../commands/doctor.js';
import { loggerFor, providerSettingsFrom } from '../context.js';
import { printJson, reportFailure } from '../output.js';
import { formatPermissionTable, permissionRows } from '../permission-table.js';

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

const toolPackages: Record<string, string> = {
  rsync: 'rsync',
  tar: 'tar',
  zstd: 'zstd',
  gzip: 'gzip',
  findmnt: 'util-linux',
  mount: 'mount',
  umount: 'mount',
  fsfreeze: 'util-linux',
  runuser: 'util-linux',
  btrfs: 'btrfs-progs',
};

export async function handleDoctor(argv: DoctorArgs): Promise<number> {
  const log = loggerFor(argv);
  try {
    if (argv.permissions) return await permissionsOnly(argv);
    const checks: Check[] = [];
    const isRoot = process.geteuid?.() === 0;
    checks.push({
      name: 'root',
      ok: isRoot,
      detail: isRoot ? 'running as root' : 'snapshots, mounts and bin/dss as the DATA_DIR owner need root',
    });
    const tools = ['findmnt', 'mount', 'umount', 'runuser', 'fsfreeze'];
    tools.push(...(argv.format === 'tar' ? ['tar', 'zstd', 'gzip'] : ['rsync']));
    let providerId = argv.provider;
    if (argv.dataDir) {
      try {
        const info = await inspectDataDir(argv.dataDir);
        checks.push({
          name: 'data dir',
          ok: true,
          detail: `${info.path}: DSS ${info.version.productVersion}, ${info.nodeType} node, owner ${info.owner.user ?? info.owner.uid}`,
        });
        if (argv.mode !== 'cold' && !providerId) {
          try {
            providerId = await detectProvider(info.path);
            checks.push({ name: 'provider', ok: true, detail: `${providerId} detected` });
          } catch (error) {
            checks.push({ name: 'provider', ok: false, detail: errorMessage(error) });
          }
        }
        if (providerId) {
          try {
            const provider = await loadProvider(providerId, {
              stateDir: argv.stateDir,
              settings: providerSettingsFrom(argv),
            });
            const volumes = await provider.locate(info.path);
            checks.push({
              name: 'volume',
              ok: true,
              detail: volumes.map((v) => `${v.id} (${v.fsType} at ${v.mountPoint})`).join(', '),
            });
            checks.push({
              name: 'quiesce',
              ok: true,
              detail: `default ${provider.defaultQuiesce}; supported: ${Object.entries(
                provider.supportedQuiesce,
              )
                .filter(([, v]) => v === true)
                .map(([k]) => k)
                .join(', ')}`,
            });
          } catch (error) {
            checks.push({ name: 'volume', ok: false, detail: errorMessage(error) });
          }
        }
      } catch (error) {
        checks.push({ name: 'data dir', ok: false, detail: errorMessage(error) });
      }
    }
    if (providerId) {
      // Provider checks (aws: IMDSv2, credentials, each EC2 action with DryRun).
      try {
        const provider = await loadProvider(providerId, {
          stateDir: argv.stateDir,
          settings: providerSettingsFrom(argv),
        });
        if (provider.doctor) {
          checks.push(...(await provider.doctor(argv.dataDir ? { dataDir: resolve(argv.dataDir) } : {})));
        }
      } catch (error) {
        checks.push({ name: 'provider', ok: false, detail: errorMessage(error) });
      }
    }
    if (providerId === 'btrfs') {
      tools.push('btrfs');
      const filesystems = await readFile('/proc/filesystems', 'utf8').catch(() => '');
      checks.push({
        name: 'kernel btrfs',
        ok: /\bbtrfs\b/.test(filesystems),
        detail: 'btrfs in /proc/filesystems',
      });
    }
    for (const tool of tools) {
      const path = findTool(tool);
      checks.push({
        name: `tool ${tool}`,
        ok: Boolean(path),
        detail: path ?? `missing: apt-get install ${toolPackages[tool] ?? tool}`,
      });
    }
    const ok = checks.every((c) => c.ok);
    if (argv.json) printJson({ ok, checks });
    else {
      const width = Math.max(14, ...checks.map((c) => c.name.length));
      for (const c of checks)
        process.stdout.write(`${c.ok ? ' ok ' : 'FAIL'}  ${c.name.padEnd(width)} ${c.detail}\n`);
      process.stdout.write(
        ok ? '\nAll checks passed.\n' : '\nSome checks failed: fix them before running a backup.\n',
      );
    }
    return ok ? ExitCode.ok : ExitCode.refused;
  } catch (error) {
    return reportFailure(error, argv, log);
  }
}

/**
 * `--permissions`: the provider's permission list as a table, each action allowed, denied or unknown
 * as its doctor checks tell. Exit 5 when one is denied; unknown (cloud unreachable) is not a failure.
 */
async function permissionsOnly(argv: DoctorArgs): Promise<number> {
  let providerId = argv.provider;
  if (!providerId && argv.dataDir) providerId = await detectProvider(resolve(argv.dataDir));
  if (!providerId) {
    throw new DssnapError('USAGE', '--permissions needs a provider', {
      hint: 'add --provider aws (or gcp, azure), or --data-dir to detect it',
    });
  }
  const provider = await loadProvider(providerId, {
    stateDir: argv.stateDir,
    settings: providerSettingsFrom(argv),
  });
  const checks = provider.doctor
    ? await provider.doctor(argv.dataDir ? { dataDir: resolve(argv.dataDir) } : {})
    : [];
  const rows = permissionRows(provider.permissions, checks);
  // Failed checks that are not about one permission (metadata, credentials) say why a row is unknown.
  const failed = checks.filter((c) => !c.ok && !rows.some((r) => c.name === `iam ${r.action}`));
  const ok = rows.every((r) => r.status !== 'denied');
  if (argv.json) {
    printJson({ ok, provider: providerId, permissions: rows, failedChecks: failed });
  } else if (rows.length === 0) {
    process.stdout.write(`The ${providerId} provider calls no cloud API: it needs no permissions.\n`);
  } else {
    process.stdout.write(formatPermissionTable(providerId, rows));
    for (const c of failed) process.stdout.write(`FAIL ${c.name}: ${c.detail}\n`);
  }
  return ok ? ExitCode.ok : ExitCode.refused;
}
