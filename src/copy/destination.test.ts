import { describe, expect, it } from 'vitest';
import { run } from '../host/exec.js';
import { formatDestination, parseDestination, shellQuote, splitCommandLine } from './destination.js';

describe('parseDestination', () => {
  it.each([
    ['/backups/dss', { kind: 'local', path: '/backups/dss' }],
    ['/backups/dss/', { kind: 'local', path: '/backups/dss' }],
    ['/backups/a:b', { kind: 'local', path: '/backups/a:b' }],
    ['./a:b', { kind: 'local', path: `${process.cwd()}/a:b` }],
    ['backup-host:/srv/dss', { kind: 'remote', host: 'backup-host', path: '/srv/dss' }],
    ['root@10.0.0.5:/srv/dss backups/', { kind: 'remote', host: 'root@10.0.0.5', path: '/srv/dss backups' }],
    ['[::1]:/srv/dss', { kind: 'remote', host: '[::1]', path: '/srv/dss' }],
    ['host:/', { kind: 'remote', host: 'host', path: '/' }],
    ['backup@[fd00::5]:/srv/dss', { kind: 'remote', host: 'backup@[fd00::5]', path: '/srv/dss' }],
  ])('reads %j', (dest, expected) => {
    const parsed = parseDestination(dest);

    expect(parsed).toEqual(expected);
  });

  it.each([
    ['', 'is empty'],
    ['rsync://host/module', 'rsync daemon address'],
    ['host::module/path', 'rsync daemon address'],
    ['host:relative/path', 'relative remote path'],
    ['host:', 'relative remote path'],
    ['-oProxyCommand=x:/path', 'does not name a valid host'],
    ['user@:/path', 'does not name a valid host'],
  ])('refuses %j (%s)', (dest, problem) => {
    const error = (() => {
      try {
        parseDestination(dest);
      } catch (thrown) {
        return thrown;
      }
    })();

    expect(error).toMatchObject({ code: 'DESTINATION_INVALID', message: expect.stringContaining(problem) });
  });
});

describe('formatDestination', () => {
  it.each([
    [{ kind: 'local', path: '/backups' } as const, ['g1'], '/backups/g1'],
    [
      { kind: 'remote', host: 'root@h', path: '/srv/b' } as const,
      ['.partial-g1'],
      'root@h:/srv/b/.partial-g1',
    ],
  ])('joins %j and %j', (destination, segments, expected) => {
    const text = formatDestination(destination, ...segments);

    expect(text).toBe(expected);
  });
});

describe('shellQuote', () => {
  it.each([
    '/plain/path',
    "it's",
    'two  spaces',
    '$(touch /tmp/pwned)',
    '`id`',
    'back\\slash',
    'été',
    '*',
    '',
  ])('a real sh reads %j back unchanged', async (value) => {
    const quoted = shellQuote(value);

    const { stdout } = await run('sh', ['-c', `printf '%s' ${quoted}`]);

    expect(stdout).toBe(value);
  });
});

describe('splitCommandLine', () => {
  it.each([
    ['ssh', ['ssh']],
    ['ssh -p 2222  -i /root/.ssh/key', ['ssh', '-p', '2222', '-i', '/root/.ssh/key']],
    [`ssh -i "/keys/my key" -o 'ProxyJump=a b'`, ['ssh', '-i', '/keys/my key', '-o', 'ProxyJump=a b']],
    ['ssh -o A=\\"x\\" my\\ key', ['ssh', '-o', 'A="x"', 'my key']],
    [`ssh ''`, ['ssh', '']],
  ])('splits %j', (line, expected) => {
    const words = splitCommandLine(line);

    expect(words).toEqual(expected);
  });

  it('refuses an unclosed quote', () => {
    const act = (): string[] => splitCommandLine('ssh -i "/keys/my key');

    expect(act).toThrow(/unclosed " quote/);
  });
});
