import { rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFixtureRoot, generateDataDir } from '../../test/fixtures/generate-data-dir.js';
import { DssnapError } from '../errors.js';
import { inspectDataDir, nodeTypeIn } from './layout.js';
import { userNameIn } from './passwd.js';

let root: string;
/** Enough for layout checks, and fast. */
const small = { files: 100, bytes: 100_000 };

beforeAll(async () => {
  root = await createFixtureRoot('dssnap-layout-');
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('inspectDataDir', () => {
  it('describes a generated automation node owned by nobody, through a symlink', async () => {
    const { dataDir } = await generateDataDir({
      dir: join(root, 'automation'),
      nodeType: 'automation',
      productVersion: '12.6.2',
      confVersion: 124,
      owner: { uid: 65534, gid: 65534 },
    });
    await symlink(dataDir, join(root, 'link-to-automation'));

    const info = await inspectDataDir(join(root, 'link-to-automation'));

    expect(info.path).toBe(dataDir);
    expect(info.version).toMatchObject({ productVersion: '12.6.2', confVersion: 124 });
    expect(info.version.commitId).toMatch(/^[0-9a-f]{40}$/);
    expect(info.nodeType).toBe('automation');
    expect(info.owner).toEqual({ uid: 65534, gid: 65534, user: 'nobody' });
  });

  describe('on directories that are not a usable DATA_DIR', () => {
    let base: string;

    beforeAll(async () => {
      ({ dataDir: base } = await generateDataDir({ dir: join(root, 'base'), seed: 7, ...small }));
    });

    it('says the directory does not exist', async () => {
      const inspect = inspectDataDir(join(root, 'missing'));

      await expect(inspect).rejects.toThrow(`No such directory: ${join(root, 'missing')}`);
      await expect(inspect).rejects.toMatchObject({
        code: 'NOT_A_DATA_DIR',
        hint: expect.stringContaining('DATA_DIR'),
      });
    });

    it('says a file is not a directory', async () => {
      const inspect = inspectDataDir(join(base, 'install.ini'));

      await expect(inspect).rejects.toThrow(/install\.ini is not a directory/);
    });

    it('says dss-version.json is missing', async () => {
      const inspect = inspectDataDir(join(base, 'config'));

      await expect(inspect).rejects.toThrow(
        /config has no dss-version\.json: it is not a DSS data directory/,
      );
      await expect(inspect).rejects.toBeInstanceOf(DssnapError);
    });

    it('says dss-version.json is not readable JSON', async () => {
      const { dataDir } = await generateDataDir({ dir: join(root, 'bad-json'), seed: 8, ...small });
      await writeFile(join(dataDir, 'dss-version.json'), '{"conf_version": "12", truncated');

      const inspect = inspectDataDir(dataDir);

      await expect(inspect).rejects.toThrow(/dss-version\.json cannot be used: it is not readable JSON/);
      await expect(inspect).rejects.toMatchObject({ code: 'NOT_A_DATA_DIR' });
    });

    it('says bin/dss is missing', async () => {
      const { dataDir } = await generateDataDir({ dir: join(root, 'no-bin'), seed: 9, ...small });
      await unlink(join(dataDir, 'bin', 'dss'));

      const inspect = inspectDataDir(dataDir);

      await expect(inspect).rejects.toThrow(/has no bin\/dss/);
      await expect(inspect).rejects.toMatchObject({ code: 'NOT_A_DATA_DIR' });
    });

    it('reports nodeType unknown when install.ini is missing', async () => {
      const { dataDir } = await generateDataDir({ dir: join(root, 'no-ini'), seed: 10, ...small });
      await unlink(join(dataDir, 'install.ini'));

      const info = await inspectDataDir(dataDir);

      expect(info.nodeType).toBe('unknown');
    });
  });
});

describe('nodeTypeIn', () => {
  it.each([
    ['[general]\nnodetype = design\n', 'design'],
    ['[general]\r\nnodeid = x\r\nNodeType=Automation\r\n', 'automation'],
    ['# comment\n[server]\nnodetype = api\n[general]\nnodetype = govern\n', 'govern'],
    ['[server]\nnodetype = api\n', 'unknown'],
    ['[general]\nnodetype = deployer\n', 'unknown'],
    ['', 'unknown'],
  ])('reads %j as %s', (text, expected) => {
    const nodeType = nodeTypeIn(text);

    expect(nodeType).toBe(expected);
  });
});

describe('userNameIn', () => {
  const passwd = 'root:x:0:0:root:/root:/bin/bash\n# comment\ndataiku:x:1001:1001::/home/dataiku:/bin/bash\n';

  it.each([
    [0, 'root'],
    [1001, 'dataiku'],
    [4242, undefined],
  ])('maps uid %i to %s', (uid, expected) => {
    const name = userNameIn(passwd, uid);

    expect(name).toBe(expected);
  });
});
