/**
 * Per-file hashes recorded with each backup (an incremental run hashing only what changed), and
 * `dssnap verify` finding a flipped byte, a missing and an extra file in a generation, a damaged
 * archive, and running a restore test — all through the built CLI, as a user would.
 */
import { existsSync } from 'node:fs';
import { open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import type { Manifest } from '../../src/catalog/manifest.js';
import { stopDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import { mutateDataDir } from '../fixtures/generate-data-dir.js';
import { dssnap } from '../support/cli.js';
import { createDssHost, type DssHost } from '../support/dss-host.js';

const log = silentLogger();

describe('file hashes and verify', () => {
  let host: DssHost;
  let first: Manifest;
  let second: Manifest;
  let archive: Manifest;
  let changedFile: string;
  const cli = (...args: string[]) =>
    dssnap([...args, '--to', host.destination, '--state-dir', host.stateDir]);

  beforeAll(async () => {
    host = await createDssHost({ storage: 'plain' });
    first = (await runBackup(host.options({ mode: 'cold', force: true }), { log })).manifest;
    await stopDss(host.info, { log });
    const mutated = await mutateDataDir({ dataDir: host.dataDir, fraction: 0.02, seed: 4 });
    changedFile = mutated.modified.find((p) => p.startsWith('config/'))!;
    second = (await runBackup(host.options({ mode: 'cold', force: true }), { log })).manifest;
    archive = (await runBackup(host.options({ mode: 'cold', force: true, format: 'tar' }), { log })).manifest;
    await stopDss(host.info, { log });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('records a file index with every backup, and an incremental run hashes only what changed', () => {
    expect(first.files).toMatchObject({ algorithm: 'sha256', source: 'copy', reusedFiles: 0 });
    expect(first.files!.hashedFiles).toBe(first.files!.files);
    expect(second.files!.reusedFiles).toBeGreaterThan(second.files!.files * 0.9);
    expect(second.files!.hashedFiles).toBeLessThan(second.files!.files * 0.1);
    expect(archive.files!.hashedFiles).toBe(archive.files!.files);
    for (const m of [first, second, archive]) {
      expect(m.steps.map((s) => s.kind)).toContain('hash-files');
      expect(existsSync(join(host.destination, '.dssnap/catalog', m.files!.index))).toBe(true);
    }
  });

  it('verifies every backup sound', async () => {
    const result = await cli('verify', '--all', '--json');

    expect(result.exitCode).toBe(0);
    const report = JSON.parse(result.stdout) as { status: string; backups: { id: string; status: string }[] };
    expect(report.status).toBe('ok');
    expect(report.backups.map((b) => [b.id, b.status])).toEqual([
      [first.id, 'ok'],
      [second.id, 'ok'],
      [archive.id, 'ok'],
    ]);
  });

  it('runs a restore test into a temp dir and removes it', async () => {
    const before = (await readdir(tmpdir())).filter((n) => n.startsWith('dssnap-restore-test-'));

    const result = await cli('verify', second.id, '--restore-test');

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`${second.id}\\s+OK`));
    expect(result.stdout).toContain('restore test passed');
    expect((await readdir(tmpdir())).filter((n) => n.startsWith('dssnap-restore-test-'))).toEqual(before);
  });

  it('finds a flipped byte, a missing file and an extra file in a generation', async () => {
    const generation = join(host.destination, second.id);
    const file = await open(join(generation, changedFile), 'r+');
    const [byte] = (await file.read(Buffer.alloc(1), 0, 1, 0)).buffer;
    await file.write(Buffer.from([byte! ^ 0x20]), 0, 1, 0);
    await file.close();
    await rm(join(generation, 'install.ini'));
    await writeFile(join(generation, 'config', 'intruder.json'), '{}\n');

    const result = await cli('verify', second.id, '--json');

    expect(result.exitCode).toBe(1);
    const report = JSON.parse(result.stdout) as {
      backups: {
        status: string;
        copy: { differences: { missing: string[]; extra: string[]; changed: unknown[] } };
      }[];
    };
    const { differences } = report.backups[0]!.copy;
    expect(report.backups[0]!.status).toBe('damaged');
    expect(differences.missing).toEqual(['install.ini']);
    expect(differences.extra).toEqual(['config/intruder.json']);
    expect(differences.changed).toEqual([{ path: changedFile, kinds: ['content'] }]);
    const human = await cli('verify', second.id);
    expect(human.stdout).toMatch(/DAMAGED/);
    expect(human.stdout).toContain('1 missing (install.ini)');
  });

  it('finds a damaged archive and fails a restore test of it', async () => {
    const path = archive.copy!.location;
    const size = (await stat(path)).size;
    const file = await open(path, 'r+');
    await file.write(Buffer.from('corrupted!'), 0, 10, Math.floor(size / 2));
    await file.close();

    const result = await cli('verify', archive.id, '--restore-test');

    expect(result.exitCode).toBe(1);
    expect(result.stdout).toMatch(/DAMAGED/);
  });

  it('refuses verify without an id or --all, and names the nearest ids for an unknown one', async () => {
    const none = await cli('verify');
    const unknown = await cli('verify', `${first.id}Z`);

    expect(none.exitCode).toBe(3);
    expect(unknown.exitCode).toBe(3);
    expect(unknown.stderr).toContain(first.id);
  });
});
