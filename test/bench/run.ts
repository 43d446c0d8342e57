/**
 * `npm run bench`: measure dssnap against the raw tools and the DESIGN.md §5 targets, on real loop
 * volumes (root). `--quick` is a small run (< 2 min); the default full run fits in ~15 min on 2 cores.
 * Prints a table and writes the figures as JSON (`--out`, default bench-results/latest.json).
 * `--rss-files N` adds a peak-RSS run on a tree of N files (the target is stated at 1M; slow).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { formatDuration } from '../../src/duration.js';
import { requireKernelFs } from '../support/require-root.js';
import { disposeOnInterrupt } from './cleanup.js';
import { assertCliBuilt } from './dssnap-cli.js';
import { type IncrementalConfig, type IncrementalResult, measureIncremental } from './incremental.js';
import { measurePause, type PauseConfig } from './pause.js';
import { measurePeakRss, type RssConfig, rssFromIncremental } from './peak-rss.js';
import { formatTable, incrementalRows, machineFacts, pauseRows, rssRow, startupRow } from './report.js';
import { measureStartup } from './startup.js';

const MiB = 1024 ** 2;

interface Plan {
  pause: PauseConfig;
  incremental: Array<IncrementalConfig & { maxRatio: number }>;
  /** A tree of its own for peak RSS; without one, the largest incremental tree's runs are used. */
  rss?: RssConfig;
  startupRuns: number;
}

const plans: Record<'quick' | 'full', Plan> = {
  quick: {
    pause: { files: 2_000, bytes: 200 * MiB, volumeSizeMb: 1024, idleMs: 1000, apiDelayMs: 200 },
    incremental: [{ files: 20_000, bytes: 200 * MiB, volumeSizeMb: 1536, maxRatio: 1.3 }],
    startupRuns: 10,
  },
  full: {
    pause: { files: 5_000, bytes: 1024 * MiB, volumeSizeMb: 3072, idleMs: 2000, apiDelayMs: 200 },
    incremental: [
      { files: 20_000, bytes: 200 * MiB, volumeSizeMb: 1536, maxRatio: 1.3 },
      { files: 200_000, bytes: 2048 * MiB, volumeSizeMb: 6144, maxRatio: 1.1 },
    ],
    startupRuns: 10,
  },
};

/**
 * `--rss-files N`: peak RSS on a tree of its own. At the target's 1M files the tree takes ~2 min to
 * generate here, but a first backup of it (copy, then hashing every file) takes far longer than the
 * ~15 min budget of the full run, so by default the largest incremental tree (200k files) stands in.
 */
function rssPlan(value: string): RssConfig {
  const files = Number(value);
  if (!Number.isInteger(files) || files < 1000) {
    throw new Error(
      `Invalid --rss-files '${value}': give a whole number of files, at least 1000 (e.g. 1000000)`,
    );
  }
  return {
    files,
    bytes: Math.max(200 * MiB, files * 2048),
    volumeSizeMb: Math.max(2048, Math.ceil(files / 80)),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      out: { type: 'string', default: 'bench-results/latest.json' },
      'rss-files': { type: 'string' },
    },
    strict: true,
  });
  await requireKernelFs('btrfs');
  await requireKernelFs('xfs');
  assertCliBuilt();
  disposeOnInterrupt();
  const mode = values.quick ? 'quick' : 'full';
  const plan: Plan = {
    ...plans[mode],
    ...(values['rss-files'] ? { rss: rssPlan(values['rss-files']) } : {}),
  };
  const startedAt = new Date();
  const machine = await machineFacts();
  const say = (text: string) =>
    process.stderr.write(`[bench ${formatDuration(Date.now() - startedAt.getTime())}] ${text}\n`);

  say(
    `${mode} run: pause on a ${plan.pause.files}-file tree (btrfs, XFS + fsfreeze, classic cold, dssnap cold)`,
  );
  const pause = await measurePause(plan.pause);
  const incremental: IncrementalResult[] = [];
  for (const config of plan.incremental) {
    say(`incremental, disk and RSS on a ${config.files}-file tree`);
    incremental.push(await measureIncremental(config));
  }
  if (plan.rss) say(`peak RSS on a ${plan.rss.files}-file tree`);
  const rss = plan.rss
    ? await measurePeakRss(plan.rss)
    : rssFromIncremental(incremental.reduce((a, b) => (b.files > a.files ? b : a)));
  say('start-up');
  const startup = await measureStartup(plan.startupRuns);

  const loadAtEnd = loadavg().map((value) => Number(value.toFixed(2)));
  const rows = [
    ...pauseRows(pause),
    ...incremental.flatMap((result, index) => incrementalRows(result, plan.incremental[index]!.maxRatio)),
    rssRow(rss),
    startupRow(startup),
  ];
  process.stdout.write(
    `\ndssnap bench (${mode}), ${startedAt.toISOString()}, ${formatDuration(Date.now() - startedAt.getTime())}\n` +
      `Machine: ${machine.cores} cores (${machine.cpu}), ${machine.memory} RAM, kernel ${machine.kernel}, ` +
      `node ${machine.node}, ${machine.rsync}; load average at start ${machine.loadAverage.join(' ')}, ` +
      `at end ${loadAtEnd.join(' ')} (other work on the machine slows every figure, dssnap's and raw alike)\n\n` +
      `${formatTable(rows)}\n`,
  );
  const out = resolve(values.out);
  await mkdir(dirname(out), { recursive: true });
  const finishedAt = new Date().toISOString();
  await writeFile(
    out,
    `${JSON.stringify({ mode, startedAt: startedAt.toISOString(), finishedAt, machine, loadAtEnd, plan, rows, pause, incremental, rss, startup }, null, 2)}\n`,
  );
  say(`results written to ${out}`);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
