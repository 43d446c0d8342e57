/**
 * The DSS version recorded in `DATA_DIR/dss-version.json`, and the order between versions that restore
 * needs: a backup may be restored only onto the same or a newer DSS.
 */
import { DssnapError } from '../errors.js';

export interface DssVersion {
  /** `conf_version`: the configuration format version, an integer stored as a string. */
  confVersion: number;
  /** `product_version`, e.g. `12.6.2`. */
  productVersion: string;
  /** `product_commitid`, when present. */
  commitId?: string;
}

/**
 * Parse the text of a `dss-version.json`. `file` only names the file in error messages.
 * Throws NOT_A_DATA_DIR saying which field is missing or malformed.
 */
export function parseDssVersion(text: string, file: string): DssVersion {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw notAVersionFile(file, `it is not readable JSON (${(error as Error).message})`, error);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw notAVersionFile(file, 'it does not hold a JSON object');
  }
  const fields = raw as Record<string, unknown>;
  const productVersion = fields.product_version;
  if (typeof productVersion !== 'string' || productVersion.trim() === '') {
    throw notAVersionFile(file, 'it has no "product_version" string');
  }
  // DSS writes conf_version as a string holding an integer; accept a bare number too.
  const confText =
    typeof fields.conf_version === 'number' ? String(fields.conf_version) : fields.conf_version;
  if (typeof confText !== 'string' || !/^\d+$/.test(confText.trim())) {
    throw notAVersionFile(
      file,
      `its "conf_version" is not an integer (found ${JSON.stringify(fields.conf_version)})`,
    );
  }
  const version: DssVersion = { confVersion: Number(confText.trim()), productVersion: productVersion.trim() };
  if (typeof fields.product_commitid === 'string' && fields.product_commitid !== '') {
    version.commitId = fields.product_commitid;
  }
  return version;
}

/**
 * Order two DSS versions: -1 when `a` is older than `b`, 0 when the same, 1 when newer. Product
 * versions compare by their numeric dotted prefix (12.6.2 < 12.10.0 < 13.0.0; a suffix such as
 * `-beta1` is ignored); equal product versions compare by `confVersion`.
 */
export function compareDssVersions(
  a: Pick<DssVersion, 'productVersion' | 'confVersion'>,
  b: Pick<DssVersion, 'productVersion' | 'confVersion'>,
): -1 | 0 | 1 {
  const left = numericParts(a.productVersion);
  const right = numericParts(b.productVersion);
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const difference = (left[i] ?? 0) - (right[i] ?? 0);
    if (difference !== 0) return difference < 0 ? -1 : 1;
  }
  if (a.confVersion === b.confVersion) return 0;
  return a.confVersion < b.confVersion ? -1 : 1;
}

/** `12.6.2-beta1` → [12, 6, 2]; a version without a numeric prefix (a dev build) → []. */
function numericParts(productVersion: string): number[] {
  const prefix = /^\s*v?(\d+(?:\.\d+)*)/i.exec(productVersion);
  return prefix ? prefix[1]!.split('.').map(Number) : [];
}

function notAVersionFile(file: string, what: string, cause?: unknown): DssnapError {
  return new DssnapError('NOT_A_DATA_DIR', `${file} cannot be used: ${what}`, {
    cause,
    hint: 'dss-version.json is written by the DSS installer; check that the path is a DSS data directory and that the file is intact.',
    details: { file },
  });
}
