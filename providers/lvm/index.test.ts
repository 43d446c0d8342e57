/**
 * The LVM provider's pure parts (tag encoding, size policy, kernel check, settings) and what it says on
 * this host, whose kernel has no device-mapper: DATA_DIR not on LVM, device-mapper missing. The provider
 * on real LVM is tested inside a VM (test/integration/lvm-*.test.ts, test/contract/lvm.contract.test.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandError } from '../../src/host/exec.js';
import { createDssHost, type DssHost } from '../../test/support/dss-host.js';
import { createLvmProvider } from './index.js';
import { supportsNestedFreeze } from './kernel.js';
import { hasDeviceMapper } from './lvm-tools.js';
import { parseSnapshotSize, planSnapshotExtents } from './size.js';
import { decodeTags, encodeTag, encodeTags } from './tags.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe('LVM tags', () => {
  it.each([
    ['dssnap:run-id', '20250131T120000Z-abc123', 'dssnap-run-id.20250131T120000Z-abc123'],
    ['dssnap:data-dir', '/data/dss', 'dssnap-data-dir.+2Fdata+2Fdss'],
    ['dssnap:created-at', '2025-01-31T12:00:00.123Z', 'dssnap-created-at.2025-01-31T12+3A00+3A00.123Z'],
    ['dssnap:retain', 'true', 'dssnap-retain.true'],
    ['team', 'data science+ops', 'dssnap-+3Ateam.data+20science+2Bops'],
    ['dssnap:reason', 'mise à jour', 'dssnap-reason.mise+20+C3+A0+20jour'],
  ])('encodes %s=%s as %s, in LVM’s charset, and back', (key, value, tag) => {
    const encoded = encodeTag(key, value);

    expect(encoded).toBe(tag);
    expect(encoded).toMatch(/^[A-Za-z0-9_+.-]+$/);
    expect(decodeTags([encoded])).toEqual({ [key]: value });
  });

  it('ignores tags that are not dssnap’s or not well formed', () => {
    const tags = ['backup-daily', 'dssnap-run-id.r1', 'dssnap-broken', 'dssnap-x.+ZZ'];

    const decoded = decodeTags(tags);

    expect(decoded).toEqual({ 'dssnap:run-id': 'r1' });
  });

  it('encodes a whole tag set in key order', () => {
    const encoded = encodeTags({ 'dssnap:role': 'snapshot', 'dssnap:data-dir': '/d' });

    expect(encoded).toEqual(['dssnap-data-dir.+2Fd', 'dssnap-role.snapshot']);
  });
});

describe('snapshot size policy', () => {
  it.each([
    ['20%', { kind: 'percent', percent: 20 }],
    ['12.5 %', { kind: 'percent', percent: 12.5 }],
    ['512M', { kind: 'bytes', bytes: 512 * MiB }],
    ['2G', { kind: 'bytes', bytes: 2 * GiB }],
    ['1.5GiB', { kind: 'bytes', bytes: 1.5 * GiB }],
    ['4096k', { kind: 'bytes', bytes: 4096 * 1024 }],
  ])('parses %s', (text, expected) => {
    expect(parseSnapshotSize(text)).toEqual(expected);
  });

  it.each(['0%', '150%', '2', 'big', '-1G', '10X'])('refuses %s', (text) => {
    expect(parseSnapshotSize(text)).toBeUndefined();
  });

  const origin = { id: 'vg/data', vg: 'vg', sizeBytes: 10 * GiB };
  const extent = 4 * MiB;
  const vgWith = (freeBytes: number) => new Map([['vg', { freeBytes, extentBytes: extent }]]);

  it('takes 20% of the origin by default when the VG has room', () => {
    const plan = planSnapshotExtents([origin], vgWith(5 * GiB), undefined);

    expect(plan.get('vg/data')! * extent).toBe(2 * GiB);
  });

  it('shrinks the default to what the VG has free, down to 5% of the origin', () => {
    const plan = planSnapshotExtents([origin], vgWith(1 * GiB), undefined);

    expect(plan.get('vg/data')! * extent).toBe(1 * GiB);
  });

  it('refuses when even 5% of the origin does not fit, naming the VG, the need and the shortfall', () => {
    const planning = () => planSnapshotExtents([origin], vgWith(300 * MiB), undefined);

    expect(planning).toThrow(
      "Volume group 'vg' has 300 MiB free, but the snapshots need 512 MiB (at least 5% of each origin (default 20%): vg/data (10 GiB) 512 MiB): 212 MiB short",
    );
    expect(planning).toThrow(
      expect.objectContaining({ code: 'NO_SPACE', hint: expect.stringContaining('vgextend vg') }),
    );
  });

  it('refuses an explicit size that does not fit, whatever the default would do', () => {
    const planning = () => planSnapshotExtents([origin], vgWith(1 * GiB), { kind: 'bytes', bytes: 2 * GiB });

    expect(planning).toThrow(/needs? 2 GiB \(--snapshot-size 2 GiB: .*\): 1 GiB short/);
  });

  it('sums the snapshots of several origins in one VG', () => {
    const other = { id: 'vg/datasets', vg: 'vg', sizeBytes: 5 * GiB };

    const plan = planSnapshotExtents([origin, other], vgWith(4 * GiB), { kind: 'percent', percent: 20 });

    expect([plan.get('vg/data')! * extent, plan.get('vg/datasets')! * extent]).toEqual([2 * GiB, 1 * GiB]);
  });
});

describe('nested freeze support', () => {
  it.each([
    ['6.1.0-56-amd64', false],
    ['5.14.0-427.el9.x86_64', false],
    ['6.7.12', false],
    ['6.8.0-45-generic', true],
    ['6.12.48+deb13-amd64', true],
    ['7.0.1', true],
    ['garbage', false],
  ])('%s → %s', (release, expected) => {
    expect(supportsNestedFreeze(release)).toBe(expected);
  });
});

describe('lvm provider settings', () => {
  it('names the setting and the value of a bad snapshotSize', () => {
    const creating = () => createLvmProvider({ stateDir: tmpdir(), settings: { snapshotSize: 'lots' } });

    expect(creating).toThrow(/setting 'snapshotSize' = "lots": must be a share of the origin such as '20%'/);
  });

  it('refuses an unknown setting, listing the valid ones', () => {
    const creating = () => createLvmProvider({ stateDir: tmpdir(), settings: { snapshotDir: '/x' } });

    expect(creating).toThrow(
      /unknown setting\(s\) 'snapshotDir' \(valid: snapshotSize, nestedFreeze, maxFreezeMs\)/,
    );
  });

  const oneLv = [{ id: 'vg/data', mountPoint: '/data', relativePath: 'dss', fsType: 'xfs' }];
  const twoLvs = [
    ...oneLv,
    { id: 'vg/datasets', mountPoint: '/data/dss/managed_datasets', relativePath: '', fsType: 'ext4' },
  ];

  it.each([
    { volumes: oneLv, hint: /--quiesce none \(the default: lvcreate freezes the filesystem itself/ },
    { volumes: twoLvs, hint: /--quiesce stop/ },
  ])(
    'refuses fsfreeze before Linux 6.8 ($volumes.length LV), naming the mode that works',
    async ({ volumes, hint }) => {
      const provider = createLvmProvider({ stateDir: tmpdir(), settings: { nestedFreeze: false } });

      const checking = provider.checkQuiesce!(volumes, 'fsfreeze');

      await expect(checking).rejects.toMatchObject({
        code: 'UNSUPPORTED',
        hint: expect.stringMatching(hint),
      });
      await expect(checking).rejects.toThrow(/lvcreate -s cannot snapshot a frozen filesystem/);
    },
  );

  it('uses none by default, which a one-LV DATA_DIR takes on any kernel; two LVs need stop before 6.8', async () => {
    const old = createLvmProvider({ stateDir: tmpdir(), settings: { nestedFreeze: false } });
    const recent = createLvmProvider({ stateDir: tmpdir(), settings: { nestedFreeze: true } });

    expect(old.defaultQuiesce).toBe('none');
    await expect(old.checkQuiesce!(oneLv, 'none')).resolves.toBeUndefined();
    await expect(old.checkQuiesce!(twoLvs, 'none')).rejects.toMatchObject({
      hint: expect.stringContaining('--quiesce stop'),
    });
    await expect(old.checkQuiesce!(twoLvs, 'stop')).resolves.toBeUndefined();
    await expect(recent.checkQuiesce!(twoLvs, 'none')).resolves.toBeUndefined();
    await expect(recent.checkQuiesce!(twoLvs, 'fsfreeze')).resolves.toBeUndefined();
  });
});

describe('lvm error classification (retries live in the decorator)', () => {
  const lvmError = (stderr: string, timedOut = false) =>
    new CommandError({ command: 'lvremove', exitCode: 5, stdout: '', stderr, timedOut, isCanceled: false });

  it.each([
    ['  Logical volume vg/snap in use.', false, false],
    ['  Can\'t remove open logical volume "snap".', false, false],
    ['  Failed to find logical volume "vg/snap"', true, true],
    ['  Volume group "vg" not found', true, true],
    ['  Insufficient free space: 10 extents needed, but only 2 available', false, true],
  ])('%s → notFound %s, permanent %s', (stderr, notFound, permanent) => {
    const provider = createLvmProvider({ stateDir: tmpdir() });

    expect([provider.isNotFound(lvmError(stderr)), provider.isPermanent(lvmError(stderr))]).toEqual([
      notFound,
      permanent,
    ]);
  });

  it('retries a command that timed out', () => {
    const provider = createLvmProvider({ stateDir: tmpdir() });

    expect(provider.isPermanent(lvmError('', true))).toBe(false);
  });
});

describe('lvm provider on a host without LVM', () => {
  let btrfsHost: DssHost;
  let plainHost: DssHost;
  let stateDir: string;

  beforeAll(async () => {
    [btrfsHost, plainHost] = await Promise.all([
      createDssHost({ storage: 'btrfs' }),
      createDssHost({ storage: 'plain' }),
    ]);
    stateDir = await mkdtemp(join(tmpdir(), 'dssnap-lvm-state-'));
  });
  afterAll(async () => {
    await Promise.all([
      btrfsHost?.dispose(),
      plainHost?.dispose(),
      rm(stateDir, { recursive: true, force: true }),
    ]);
  });

  it('says a DATA_DIR on btrfs is not on LVM and points to the btrfs provider', async () => {
    const provider = createLvmProvider({ stateDir });

    const locating = provider.locate(btrfsHost.dataDir);

    await expect(locating).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringContaining(`DATA_DIR '${btrfsHost.dataDir}' is not on an LVM logical volume`),
      hint: expect.stringContaining('--provider btrfs'),
    });
  });

  it('says a DATA_DIR on a plain filesystem is not on LVM and points to --mode cold', async () => {
    const provider = createLvmProvider({ stateDir });

    const locating = provider.locate(plainHost.dataDir);

    await expect(locating).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringMatching(
        hasDeviceMapper()
          ? /is not on an LVM logical volume/
          : /is not on an LVM logical volume.*this kernel has no device-mapper/,
      ),
      hint: expect.stringContaining('--mode cold'),
    });
  });

  it('doctor reports device-mapper and the lvm2 tools as this host has them; list finds nothing', async () => {
    const provider = createLvmProvider({ stateDir });

    const checks = await provider.doctor!({});
    const listed = await provider.list({});

    expect(checks.find((check) => check.name === 'device-mapper')).toMatchObject({
      ok: hasDeviceMapper(),
      detail: hasDeviceMapper() ? '/dev/mapper/control present' : expect.stringContaining('no device-mapper'),
    });
    expect(checks.find((check) => check.name === 'lvm2 tools')).toMatchObject({ ok: true });
    if (!hasDeviceMapper()) expect(listed).toEqual([]);
  });
});
