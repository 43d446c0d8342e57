/**
 * A streaming reader of the tar archives dssnap writes (GNU tar, `--xattrs --acls`: ustar headers, GNU
 * long names, pax extended headers, base-256 numbers). It yields each member's header and lets the
 * caller consume its data in chunks, holding at most one chunk in memory: a 100 GB archive is read in
 * constant memory. The archive is decompressed by zstd/gzip in a child process.
 */
import { DssnapError } from '../errors.js';
import { requireTool, run } from '../host/exec.js';

export type TarMemberType = 'file' | 'hardlink' | 'symlink' | 'directory' | 'other';

export interface TarMember {
  /** Relative to the archive root without `./` (`.` for the root itself); no trailing slash. */
  path: string;
  type: TarMemberType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Symlink target, or the path (normalised like `path`) of the file a hard link points to. */
  linkTarget?: string;
}

/** Called for each member; feed `data` chunks (file members only) to a hash before returning. */
export type MemberHandler = (member: TarMember, data: AsyncIterable<Buffer>) => Promise<void>;

const blockSize = 512;

/**
 * Read `archive` (`.tar.zst`, `.tar.gz` or `.tar`) member by member, in archive order. Returns when the
 * end-of-archive marker was read. Throws BACKUP_INVALID for a truncated or damaged archive (a bad
 * header checksum, a decompression error), NOT_FOUND when it does not exist.
 */
export async function readTarArchive(
  archive: string,
  onMember: MemberHandler,
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  const decompress = archive.endsWith('.zst')
    ? [requireTool('zstd', 'zstd'), '-dc', '--', archive]
    : archive.endsWith('.gz')
      ? [requireTool('gzip', 'gzip'), '-dc', '--', archive]
      : ['cat', '--', archive];
  // A parse failure stops reading: the decompressor must then be stopped too, or it blocks on a full pipe.
  const controller = new AbortController();
  const forward = (): void => controller.abort();
  options.signal?.addEventListener('abort', forward, { once: true });
  let parsing: Promise<void> | undefined;
  let parseError: unknown;
  let childError: unknown;
  try {
    await run(decompress[0]!, decompress.slice(1), {
      signal: controller.signal,
      onStdout: (stream) => {
        parsing = parseTar(stream as AsyncIterable<Buffer>, onMember).catch((error: unknown) => {
          parseError = error;
          controller.abort();
        });
      },
    });
  } catch (error) {
    childError = error;
  } finally {
    options.signal?.removeEventListener('abort', forward);
  }
  await parsing;
  if (options.signal?.aborted) {
    throw new DssnapError('INTERRUPTED', `Reading ${archive} was interrupted`, { details: { archive } });
  }
  if (parseError !== undefined) {
    throw parseError instanceof DssnapError
      ? new DssnapError(
          parseError.code,
          parseError.message.replace('The archive', `The archive ${archive}`),
          {
            cause: parseError,
            ...(parseError.hint ? { hint: parseError.hint } : {}),
            details: { archive },
          },
        )
      : parseError;
  }
  if (childError !== undefined) {
    throw new DssnapError(
      'BACKUP_INVALID',
      `The archive ${archive} cannot be read: ${(childError as Error).message}`,
      {
        cause: childError,
        hint: 'The archive is truncated or damaged; restore another backup (dssnap verify --all tells which are sound).',
        details: { archive },
      },
    );
  }
}

/** Parse a tar stream. Exported for tests. */
export async function parseTar(stream: AsyncIterable<Buffer>, onMember: MemberHandler): Promise<void> {
  const reader = new BlockReader(stream);
  let pax: Record<string, string> = {};
  let globalPax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  let zeroBlocks = 0;
  for (;;) {
    const header = await reader.read(blockSize);
    if (header === undefined) {
      if (zeroBlocks > 0) return;
      throw damaged('it ends without the end-of-archive marker');
    }
    if (header.every((byte) => byte === 0)) {
      zeroBlocks++;
      if (zeroBlocks === 2) {
        // Drain the record padding so that the writer of the stream never blocks.
        while ((await reader.readUpTo(1024 * 1024)) !== undefined);
        return;
      }
      continue;
    }
    zeroBlocks = 0;
    checkChecksum(header);
    const typeflag = String.fromCharCode(header[156]!);
    const size = readNumber(header, 124, 12);
    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      const body = await reader.readAll(size);
      await reader.skip(padding(size));
      if (typeflag === 'x') pax = { ...pax, ...parsePax(body) };
      else if (typeflag === 'g') globalPax = { ...globalPax, ...parsePax(body) };
      else if (typeflag === 'L') longName = cString(body);
      else longLink = cString(body);
      continue;
    }
    const fields = { ...globalPax, ...pax };
    const magic = header.subarray(257, 263).toString('latin1');
    const prefix = magic === 'ustar\0' ? cString(header.subarray(345, 500)) : '';
    const rawName =
      fields.path ?? longName ?? (prefix ? `${prefix}/` : '') + cString(header.subarray(0, 100));
    const rawLink = fields.linkpath ?? longLink ?? cString(header.subarray(157, 257));
    const dataSize = fields.size !== undefined ? Number(fields.size) : size;
    const type = memberType(typeflag);
    const member: TarMember = {
      path: normalise(rawName),
      type,
      mode: readNumber(header, 100, 8) & 0o7777,
      uid: fields.uid !== undefined ? Number(fields.uid) : readNumber(header, 108, 8),
      gid: fields.gid !== undefined ? Number(fields.gid) : readNumber(header, 116, 8),
      size: type === 'file' ? dataSize : 0,
      mtime: Math.floor(fields.mtime !== undefined ? Number(fields.mtime) : readNumber(header, 136, 12)),
      ...(type === 'symlink' ? { linkTarget: rawLink } : {}),
      ...(type === 'hardlink' ? { linkTarget: normalise(rawLink) } : {}),
    };
    pax = {};
    longName = undefined;
    longLink = undefined;
    // Links and directories carry no data; everything else carries its (pax) size.
    const carried = type === 'hardlink' || type === 'symlink' || type === 'directory' ? 0 : dataSize;
    let consumed = 0;
    const data = (async function* () {
      while (consumed < carried) {
        const chunk = await reader.readUpTo(Math.min(carried - consumed, 1024 * 1024));
        if (chunk === undefined) throw damaged(`member ${member.path} is truncated`);
        consumed += chunk.length;
        yield chunk;
      }
    })();
    await onMember(member, data);
    // Whatever the handler did not read is skipped.
    if (consumed < carried) await reader.skip(carried - consumed);
    await reader.skip(padding(carried));
  }
}

function memberType(typeflag: string): TarMemberType {
  switch (typeflag) {
    case '0':
    case '\0':
    case '7':
      return 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '5':
      return 'directory';
    default:
      return 'other';
  }
}

/** `./config/x.json` → `config/x.json`; `./` → `.`; trailing slashes dropped. */
function normalise(name: string): string {
  const trimmed = name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  return trimmed === '' || trimmed === '.' ? '.' : trimmed;
}

function padding(size: number): number {
  return (blockSize - (size % blockSize)) % blockSize;
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return Buffer.from(end < 0 ? bytes : bytes.subarray(0, end)).toString('utf8');
}

/** An octal ASCII field, or GNU base-256 (high bit of the first byte set). */
function readNumber(header: Buffer, offset: number, length: number): number {
  const field = header.subarray(offset, offset + length);
  if (field[0]! & 0x80) {
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!;
    return value;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : Number.parseInt(text, 8);
}

function checkChecksum(header: Buffer): void {
  const stored = readNumber(header, 148, 8);
  let sum = 0;
  for (let i = 0; i < blockSize; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  if (sum !== stored) throw damaged('a member header has a wrong checksum');
}

/** pax records: `<length> <key>=<value>\n`. */
function parsePax(body: Buffer): Record<string, string> {
  const result: Record<string, string> = {};
  let offset = 0;
  while (offset < body.length) {
    const space = body.indexOf(0x20, offset);
    if (space < 0) break;
    const length = Number(body.subarray(offset, space).toString('latin1'));
    if (!Number.isFinite(length) || length <= 0) break;
    const record = body.subarray(space + 1, offset + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    if (equals > 0) result[record.slice(0, equals)] = record.slice(equals + 1);
    offset += length;
  }
  return result;
}

function damaged(problem: string): DssnapError {
  return new DssnapError('BACKUP_INVALID', `The archive is damaged: ${problem}`, {
    hint: 'Restore another backup (dssnap verify --all tells which are sound).',
  });
}

/** Exact-size reads over a chunked stream, holding at most one pending chunk. */
class BlockReader {
  private readonly iterator: AsyncIterator<Buffer>;
  private pending: Buffer = Buffer.alloc(0);
  private done = false;

  constructor(stream: AsyncIterable<Buffer>) {
    this.iterator = stream[Symbol.asyncIterator]();
  }

  /** At most `max` bytes (at least 1), or undefined at the end of the stream. */
  async readUpTo(max: number): Promise<Buffer | undefined> {
    if (this.pending.length === 0 && !(await this.fill())) return undefined;
    const chunk = this.pending.subarray(0, max);
    this.pending = this.pending.subarray(chunk.length);
    return chunk;
  }

  /** Exactly `size` bytes, or undefined when the stream ends first (nothing at all left). */
  async read(size: number): Promise<Buffer | undefined> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < size) {
      const chunk = await this.readUpTo(size - got);
      if (chunk === undefined) {
        if (got === 0) return undefined;
        throw damaged('it is truncated');
      }
      parts.push(chunk);
      got += chunk.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  async readAll(size: number): Promise<Buffer> {
    if (size === 0) return Buffer.alloc(0);
    const buffer = await this.read(size);
    if (buffer === undefined) throw damaged('it is truncated');
    return buffer;
  }

  async skip(size: number): Promise<void> {
    let left = size;
    while (left > 0) {
      const chunk = await this.readUpTo(left);
      if (chunk === undefined) throw damaged('it is truncated');
      left -= chunk.length;
    }
  }

  private async fill(): Promise<boolean> {
    while (!this.done) {
      const next = await this.iterator.next();
      if (next.done) {
        this.done = true;
        return false;
      }
      if (next.value.length > 0) {
        this.pending = next.value;
        return true;
      }
    }
    return false;
  }
}
