/**
 * User names from uids, read from /etc/passwd: `runuser -u` needs a name, and the owner of DATA_DIR is
 * known only as a uid from stat().
 */
import { readFile } from 'node:fs/promises';

/**
 * The name of the user with this uid, or undefined when /etc/passwd has no such entry (or cannot be
 * read). Reads the file on every call; cheap, and never stale after a `useradd`.
 */
export async function userNameOf(uid: number, passwdFile = '/etc/passwd'): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(passwdFile, 'utf8');
  } catch {
    return undefined;
  }
  return userNameIn(text, uid);
}

/** The first name whose uid field equals `uid` in passwd-format text. */
export function userNameIn(passwdText: string, uid: number): string | undefined {
  for (const line of passwdText.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(':');
    if (fields.length >= 3 && fields[2] === String(uid) && fields[0]) return fields[0];
  }
  return undefined;
}
