import { describe, expect, it } from 'vitest';
import { classifyRsyncExit, parseProgressLine, parseRsyncStats, rsyncExitMeaning } from './rsync-output.js';

const stats2 = `
Number of files: 1,204 (reg: 1,000, dir: 200, link: 4)
Number of created files: 1,204 (reg: 1,000, dir: 200, link: 4)
Number of deleted files: 0
Number of regular files transferred: 12
Total file size: 3,145,731 bytes
Total transferred file size: 45,120 bytes
Literal data: 45,120 bytes
Matched data: 0 bytes
File list size: 0
Total bytes sent: 3,146,708
Total bytes received: 76

sent 3,146,708 bytes  received 76 bytes  6,293,568.00 bytes/sec
total size is 3,145,731  speedup is 1.00
`;

describe('classifyRsyncExit', () => {
  it.each([
    [0, 'ok'],
    [23, 'warning'],
    [24, 'warning'],
    [1, 'failed'],
    [11, 'failed'],
    [12, 'failed'],
    [20, 'failed'],
    [30, 'failed'],
    [255, 'failed'],
  ])('exit %i is %s', (exitCode, expected) => {
    const outcome = classifyRsyncExit(exitCode);

    expect(outcome).toBe(expected);
  });
});

describe('rsyncExitMeaning', () => {
  it.each([
    [11, 'error in file I/O'],
    [23, 'partial transfer due to error'],
    [24, 'partial transfer due to vanished source files'],
    [42, 'unknown exit code'],
  ])('names exit %i "%s"', (exitCode, meaning) => {
    const text = rsyncExitMeaning(exitCode);

    expect(text).toBe(meaning);
  });
});

describe('parseRsyncStats', () => {
  it('reads files, total and transferred bytes, ignoring digit separators', () => {
    const stats = parseRsyncStats(stats2);

    expect(stats).toEqual({ files: 1204, totalBytes: 3_145_731, transferredBytes: 45_120 });
  });

  it('reads a locale that groups digits with dots', () => {
    const stats = parseRsyncStats(
      'Number of files: 1.204\nTotal file size: 3.145.731 bytes\nTotal transferred file size: 0 bytes',
    );

    expect(stats).toEqual({ files: 1204, totalBytes: 3_145_731, transferredBytes: 0 });
  });

  it('reads zeros when rsync stopped before its summary', () => {
    const stats = parseRsyncStats('rsync error: error in file IO (code 11)');

    expect(stats).toEqual({ files: 0, totalBytes: 0, transferredBytes: 0 });
  });
});

describe('parseProgressLine', () => {
  it.each([
    [
      '      3,145,731 100%  750.00MB/s    0:00:00 (xfr#2, to-chk=0/4)',
      { bytes: 3_145_731, percent: 100, rate: 786_432_000 },
    ],
    ['              3   0%    0.00kB/s    0:00:00', { bytes: 3, percent: 0, rate: 0 }],
    [
      '     65,536  42%   12.50kB/s    0:00:03 (xfr#1, ir-chk=1000/1204)',
      { bytes: 65_536, percent: 42, rate: 12_800 },
    ],
    [
      '  1,073,741,824  87%    1.25GB/s    0:00:01',
      { bytes: 1_073_741_824, percent: 87, rate: 1_342_177_280 },
    ],
  ])('reads %j', (line, expected) => {
    const progress = parseProgressLine(line);

    expect(progress).toEqual(expected);
  });

  it.each(['Number of files: 4 (reg: 2, dir: 2)', 'sent 3,146,708 bytes  received 76 bytes', ''])(
    'ignores %j',
    (line) => {
      const progress = parseProgressLine(line);

      expect(progress).toBeUndefined();
    },
  );
});
