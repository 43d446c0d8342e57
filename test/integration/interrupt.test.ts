/**
 * Runs stopped in the middle of the copy: SIGTERM undoes everything at once (exit 130); SIGKILL leaves
 * a journal, and `dssnap recover` in another process leaves the host clean — DSS running, no snapshot,
 * no partial generation, no lock.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { leftoverJournals } from '../../src/procedure/journal.js';
import { lockPath } from '../../src/procedure/lock.js';
import { dssnap, spawnDssnap } from '../support/cli.js';
import { createDssHost, type DssHost } from '../support/dss-host.js';

const log = silentLogger();
// Big enough for the copy to take a second or two, so the signal lands in the middle of it.
const generate = { files: 2_000, bytes: 400 * 1024 ** 2 };

async function waitForPartial(destination: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await readdir(destination)).some((name) => name.startsWith('.partial-'))) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`No partial generation appeared in ${destination} within ${timeoutMs} ms`);
}

describe.each(['snapshot', 'cold'] as const)('%s backup interrupted mid-copy', (mode) => {
  let host: DssHost;
  let args: string[];

  beforeAll(async () => {
    host = await createDssHost({
      storage: mode === 'snapshot' ? 'btrfs' : 'plain',
      generate,
      volumeSizeMb: 1024,
    });
    args = [
      'backup',
      '--data-dir',
      host.dataDir,
      '--to',
      host.destination,
      '--state-dir',
      host.stateDir,
      '--mount-root',
      host.mountRoot,
      ...(mode === 'snapshot' ? ['--snapshot-dir', host.snapshotDir!] : ['--mode', 'cold', '--force']),
    ];
  });
  afterAll(async () => {
    await host?.dispose();
  });

  async function expectClean(): Promise<void> {
    expect(await host.destinationEntries()).toEqual([]);
    expect(await host.snapshotEntries()).toEqual([]);
    expect(await host.dssState()).toBe('running');
    expect(existsSync(lockPath(host.stateDir, host.dataDir))).toBe(false);
    expect(leftoverJournals(host.stateDir)).toEqual([]);
  }

  it('SIGTERM undoes the run before exiting with 130', async () => {
    await startDss(host.info, { log });
    const child = spawnDssnap(args);
    await waitForPartial(host.destination);

    child.kill('SIGTERM');
    const result = await child;

    expect(result.exitCode).toBe(130);
    expect(String(result.stderr)).toMatch(/interrupted/i);
    await expectClean();
  });

  it('SIGKILL leaves a journal; dssnap recover undoes everything the run did', async () => {
    await startDss(host.info, { log });
    const child = spawnDssnap(args);
    await waitForPartial(host.destination);

    child.kill('SIGKILL');
    await child;
    expect(leftoverJournals(host.stateDir)).toHaveLength(1);
    if (mode === 'snapshot') expect((await host.snapshotEntries()).length).toBeGreaterThan(0);
    else expect(await host.dssState()).toBe('stopped');

    const recovered = await dssnap(['recover', '--state-dir', host.stateDir]);

    expect(recovered.exitCode).toBe(0);
    expect(recovered.stdout).toMatch(
      mode === 'snapshot' ? /undid copy, (expose-snapshot, )?create-snapshots/ : /undid copy, stop-dss/,
    );
    await expectClean();
  });

  it('the next run after a SIGKILL recovers the dead run itself, then backs up', async () => {
    await startDss(host.info, { log });
    const child = spawnDssnap(args);
    await waitForPartial(host.destination);
    child.kill('SIGKILL');
    await child;

    const result = await dssnap(args);

    expect(result.exitCode).toBe(0);
    expect((await host.destinationEntries()).filter((n) => !n.startsWith('.partial-'))).toHaveLength(1);
    expect((await host.destinationEntries()).filter((n) => n.startsWith('.partial-'))).toEqual([]);
    expect(await host.snapshotEntries()).toEqual([]);
    expect(await host.dssState()).toBe('running');
    expect(leftoverJournals(host.stateDir)).toEqual([]);
  });
});
