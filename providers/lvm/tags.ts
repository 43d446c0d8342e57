/**
 * dssnap's tags as LVM tags. LVM allows only `[A-Za-z0-9_+.-]` in a tag (plus a few more characters in
 * recent versions, not relied on), so each `key=value` becomes one tag `dssnap-<key>.<value>`, both
 * escaped: `dssnap:run-id` = `20250131T120000Z-abc123` → `dssnap-run-id.20250131T120000Z-abc123`,
 * `dssnap:data-dir` = `/data/dss` → `dssnap-data-dir.+2Fdata+2Fdss`. Other characters become `+HH`
 * (UTF-8 bytes in hex); a key outside the `dssnap:` namespace keeps its `:` escaped, so decoding is
 * exact. Readable in `lvs -o lv_tags`, selectable with `lvs @tag`.
 */
import type { Tags } from '../../src/provider/types.js';

const prefix = 'dssnap-';
const namespace = 'dssnap:';
/** LVM's limit on one tag's length. */
export const maxTagLength = 1024;

/** The LVM tag for one dssnap tag. Throws when it would exceed LVM's 1024 characters. */
export function encodeTag(key: string, value: string): string {
  const name = key.startsWith(namespace) ? key.slice(namespace.length) : `:${key}`;
  const tag = `${prefix}${escapeTagText(name, /[A-Za-z0-9_-]/)}.${escapeTagText(value, /[A-Za-z0-9_.-]/)}`;
  if (tag.length > maxTagLength) {
    throw new Error(
      `The tag ${key}=${value} is too long for LVM once encoded (${tag.length} > ${maxTagLength})`,
    );
  }
  return tag;
}

/** Every tag of `tags` as LVM tags, in key order. */
export function encodeTags(tags: Tags): string[] {
  return Object.keys(tags)
    .sort()
    .map((key) => encodeTag(key, tags[key]!));
}

/** The dssnap tags among an LV's tags; tags that are not dssnap's are ignored. */
export function decodeTags(lvTags: readonly string[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const tag of lvTags) {
    if (!tag.startsWith(prefix)) continue;
    const body = tag.slice(prefix.length);
    const dot = body.indexOf('.');
    if (dot <= 0) continue;
    const name = unescapeTagText(body.slice(0, dot));
    const value = unescapeTagText(body.slice(dot + 1));
    if (name === undefined || value === undefined) continue;
    tags[name.startsWith(':') ? name.slice(1) : `${namespace}${name}`] = value;
  }
  return tags;
}

function escapeTagText(text: string, kept: RegExp): string {
  let out = '';
  for (const char of text) {
    if (kept.test(char)) out += char;
    else
      for (const byte of Buffer.from(char, 'utf8'))
        out += `+${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function unescapeTagText(text: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '+') {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else bytes.push(text.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}
