import { describe, expect, it } from 'vitest';
import { formatBytes, formatDuration, parseDuration } from './duration.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1.5s', 1_500],
    ['20', 20_000],
    [3, 3_000],
  ])('%s is %d ms', (input, ms) => {
    expect(parseDuration(input, '--x')).toBe(ms);
  });

  it.each(['soon', '5 minutes', '-1s', ''])('rejects %j naming the option', (input) => {
    expect(() => parseDuration(input, '--max-pause')).toThrow(`Invalid duration for --max-pause: '${input}'`);
  });
});

describe('formatting', () => {
  it.each([
    [2.34, '2.3 ms'],
    [35.4, '35 ms'],
    [1_234, '1.23 s'],
    [65_000, '1 min 5 s'],
  ])('formatDuration(%d) = %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it.each([
    [512, '512 B'],
    [1_536, '1.5 KiB'],
    [10 * 1024 ** 3, '10.0 GiB'],
  ])('formatBytes(%d) = %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});
