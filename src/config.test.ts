import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backupOptionsSchema, envName, optionsFromEnv, readConfigFile, resolveOptions } from './config.js';

describe('resolveOptions', () => {
  it('applies defaults to the required options', () => {
    const options = resolveOptions(backupOptionsSchema, { flags: { dataDir: '/data/dss', to: '/backups' } });

    expect(options).toMatchObject({
      format: 'rsync',
      compression: 'zstd',
      copy: 'full',
      keepSnapshot: false,
      excludeClass: [],
      maxPause: '5s',
      stateDir: '/var/lib/dssnap',
    });
  });

  it('lets flags win over env and env over the file', () => {
    const options = resolveOptions(backupOptionsSchema, {
      file: { dataDir: '/file', to: '/file-to', format: 'tar' },
      env: { to: '/env-to', format: 'tar' },
      flags: { format: 'rsync', to: undefined },
    });

    expect([options.dataDir, options.to, options.format]).toEqual(['/file', '/env-to', 'rsync']);
  });

  it.each([
    [{ file: { dataDir: '/d', retentionDays: 4 } }, /Unknown option 'retention-days' in config file/],
    [{ flags: { dataDir: '/d', format: 'zip' } }, /Invalid value for --format: "zip" \(a string\)/],
    [{ flags: { dataDir: '/d', maxPause: 'soon' } }, /--max-pause: "soon" \(a string\): not a duration/],
    [{ flags: { dataDir: '/d', compressionLevel: 40 } }, /--compression-level: 40 \(a number\)/],
    [{ flags: {} }, /Invalid value for --data-dir: nothing/],
  ])('rejects %j with a message naming the option and value', (sources, message) => {
    expect(() => resolveOptions(backupOptionsSchema, sources)).toThrow(message);
  });

  it('lists the valid options (kebab-case) for an unknown key', () => {
    let hint: string | undefined;

    try {
      resolveOptions(backupOptionsSchema, { file: { bogus: 1 }, filePath: 'x.yaml' });
    } catch (error) {
      hint = (error as { hint?: string }).hint;
    }

    expect(hint).toMatch(/Valid options: data-dir, to, mode, provider, quiesce/);
  });

  it('names the env var and file key to use when a required option is missing', () => {
    expect(() => resolveOptions(backupOptionsSchema, {})).toThrow(
      expect.objectContaining({ hint: expect.stringMatching(/DSSNAP_DATA_DIR or 'data-dir:'/) }),
    );
  });
});

describe('configuration sources', () => {
  it('reads YAML with kebab-case keys as camelCase options', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dssnap-config-'));
    const file = join(dir, 'dssnap.yaml');
    await writeFile(file, 'data-dir: /data/dss\nkeep-snapshot: true\nexclude-class: [logs, other]\n');

    expect(readConfigFile(file)).toEqual({
      dataDir: '/data/dss',
      keepSnapshot: true,
      excludeClass: ['logs', 'other'],
    });
  });

  it('reports a broken file with its path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dssnap-config-'));
    const file = join(dir, 'broken.json');
    await writeFile(file, '{ "data-dir": ');

    expect(() => readConfigFile(file)).toThrow(new RegExp(`${file} is not valid JSON`));
  });

  it('maps DSSNAP_* variables, booleans typed', () => {
    const env = { DSSNAP_DATA_DIR: '/d', DSSNAP_KEEP_SNAPSHOT: 'true', DSSNAP_UNRELATED: 'x' };

    expect(optionsFromEnv(backupOptionsSchema, env)).toEqual({ dataDir: '/d', keepSnapshot: true });
    expect(envName('snapshotTimeout')).toBe('DSSNAP_SNAPSHOT_TIMEOUT');
  });
});
