/** (e) Start-up: `dssnap --help`, median of N runs, against a bare `node -e 0` (the floor). */
import { assertCliBuilt, cliPath } from './dssnap-cli.js';
import { median, runMeasured } from './measured-process.js';

export interface StartupResult {
  runs: number;
  dssnapHelpMs: number;
  nodeBareMs: number;
  samplesMs: { dssnapHelp: number[]; nodeBare: number[] };
}

export async function measureStartup(runs: number): Promise<StartupResult> {
  assertCliBuilt();
  const dssnapHelp = await sample(runs, [cliPath, '--help']);
  const nodeBare = await sample(runs, ['-e', '0']);
  return {
    runs,
    dssnapHelpMs: median(dssnapHelp),
    nodeBareMs: median(nodeBare),
    samplesMs: { dssnapHelp, nodeBare },
  };
}

/** One warm-up run (module cache of the OS), then `runs` timed ones. */
async function sample(runs: number, args: string[]): Promise<number[]> {
  const times: number[] = [];
  for (let index = 0; index <= runs; index++) {
    const result = await runMeasured(process.execPath, args);
    if (result.exitCode !== 0)
      throw new Error(`node ${args.join(' ')} exited ${result.exitCode}: ${result.stderr}`);
    if (index > 0) times.push(result.wallMs);
  }
  return times;
}
