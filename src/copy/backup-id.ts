/**
 * Names of copies in a destination. A copy is written under a `.partial-` name and renamed when
 * complete, so anything without the prefix is a finished copy.
 */
import { DssnapError } from '../errors.js';

export const partialPrefix = '.partial-';

/**
 * Throw USAGE unless `backupId` can be a file name of its own: it becomes `DEST/<backupId>` and must
 * neither escape DEST nor look like a hidden (partial or catalog) entry. Pure.
 */
export function assertBackupId(backupId: string): void {
  const problem =
    backupId === ''
      ? 'is empty'
      : backupId.startsWith('.')
        ? 'starts with a dot (reserved for partial copies and the catalog)'
        : /[/\\\0\r\n]/.test(backupId)
          ? 'contains a slash, a backslash or a control character'
          : undefined;
  if (problem) {
    throw new DssnapError('USAGE', `The backup id '${backupId}' ${problem}`, {
      hint: 'Use a plain name such as 2024-05-01T020000Z; it becomes a directory or file name in the destination.',
      details: { backupId },
    });
  }
}

/** The temporary name of a copy while it is being written. */
export function partialName(backupId: string): string {
  return `${partialPrefix}${backupId}`;
}
