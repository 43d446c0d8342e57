import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { asidePath, type RestoreTarget } from './target.js';

describe('asidePath', () => {
  let parent: string;
  let target: RestoreTarget;
  const when = new Date('2026-11-26T14:22:00.123Z');

  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), 'dssnap-aside-'));
    target = {
      path: join(parent, 'dss_data'),
      parent,
      state: 'data-dir',
      mountPoint: false,
      subvolume: false,
      strategy: 'rename',
    };
  });
  afterEach(() => rm(parent, { recursive: true, force: true }));

  it('names the moved-aside DATA_DIR after the restore time, to the second', () => {
    expect(asidePath(target, when)).toBe(join(parent, 'dss_data.before-restore-20261126T142200Z'));
  });

  it('never reuses the name of an earlier restore in the same second', async () => {
    await mkdir(join(parent, 'dss_data.before-restore-20261126T142200Z'));
    await mkdir(join(parent, 'dss_data.before-restore-20261126T142200Z-2'));
    expect(asidePath(target, when)).toBe(join(parent, 'dss_data.before-restore-20261126T142200Z-3'));
  });
});
