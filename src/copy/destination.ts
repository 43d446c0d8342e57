/**
 * Where copies go: a local directory or `[user@]host:/path` reached over ssh, as rsync spells it.
 */
import { posix, resolve } from 'node:path';
import { DssnapError } from '../errors.js';

export type Destination = { kind: 'local'; path: string } | { kind: 'remote'; host: string; path: string };

/**
 * Parse a destination the way rsync reads its arguments: a colon before the first slash makes it remote
 * (`host:/path`, `user@host:/path`, `[::1]:/path`). Pure. Local paths are resolved to absolute ones;
 * remote paths must be absolute. Throws DESTINATION_INVALID for an empty destination, an rsync daemon
 * address, a host that could be read as an ssh option, or a relative remote path.
 */
export function parseDestination(dest: string): Destination {
  const invalid = (problem: string, hint: string): DssnapError =>
    new DssnapError('DESTINATION_INVALID', `The destination '${dest}' ${problem}`, {
      hint,
      details: { destination: dest },
    });
  if (dest.trim() === '') throw invalid('is empty', 'Give a directory (/backups/dss) or host:/path for ssh.');
  const remote = /^((?:[^/:@[]+@)?\[[^\]]+\]|[^/:[]+):(.*)$/.exec(dest);
  if (dest.startsWith('rsync://') || remote?.[2]?.startsWith(':')) {
    throw invalid(
      'is an rsync daemon address, which is not supported',
      'Use ssh instead: user@host:/absolute/path (the host needs rsync and an ssh login).',
    );
  }
  if (!remote) return { kind: 'local', path: resolve(dest) };
  const host = remote[1]!;
  const path = remote[2]!;
  const hostName = host.slice(host.lastIndexOf('@') + 1);
  if (hostName === '' || host.startsWith('-') || host.startsWith('@') || /\s/.test(host)) {
    throw invalid('does not name a valid host', 'Write it as user@host:/absolute/path.');
  }
  if (!path.startsWith('/')) {
    throw invalid(
      `has a relative remote path '${path}'`,
      `Write the remote path in full, e.g. ${host}:/home/user/backups (a relative path depends on the remote home directory).`,
    );
  }
  return { kind: 'remote', host, path: posix.normalize(path).replace(/(.)\/$/, '$1') };
}

/** `host:/path` or the local path: the form rsync and a user read. */
export function formatDestination(destination: Destination, ...segments: string[]): string {
  if (destination.kind === 'local') return resolve(destination.path, ...segments);
  return `${destination.host}:${posix.join(destination.path, ...segments)}`;
}

/** Quote `value` for a POSIX shell (the remote side of ssh runs one). Pure. */
export function shellQuote(value: string): string {
  if (/^[\w@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * Split a command line such as `ssh -p 2222 -i "/keys/my key"` into words, honouring single quotes,
 * double quotes and backslashes like a shell (no expansions). Pure. Throws USAGE on an unclosed quote.
 */
export function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: "'" | '"' | undefined;
  for (let index = 0; index < line.length; index++) {
    const char = line[index]!;
    if (quote === "'") {
      if (char === "'") quote = undefined;
      else word += char;
    } else if (quote === '"') {
      if (char === '"') quote = undefined;
      else if (char === '\\' && /["\\$`]/.test(line[index + 1] ?? '')) word += line[++index];
      else word += char;
    } else if (/\s/.test(char)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (char === "'" || char === '"') {
      quote = char;
      word ??= '';
    } else if (char === '\\' && index + 1 < line.length) {
      word = (word ?? '') + line[++index];
    } else {
      word = (word ?? '') + char;
    }
  }
  if (quote) {
    throw new DssnapError('USAGE', `The command line '${line}' has an unclosed ${quote} quote`, {
      hint: 'Close the quote, or quote the whole option value.',
    });
  }
  if (word !== undefined) words.push(word);
  return words;
}
