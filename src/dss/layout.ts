/**
 * What a DSS data directory is: the checks that tell a DATA_DIR from any other directory, and the facts
 * dssnap needs about it (version, node type, owner).
 */
import { constants } from 'node:fs';
import { access, readFile, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DssnapError } from '../errors.js';
import { userNameOf } from './passwd.js';
import { type DssVersion, parseDssVersion } from './version.js';

export { compareDssVersions, type DssVersion, parseDssVersion } from './version.js';

export type DssNodeType = 'design' | 'automation' | 'api' | 'govern' | 'unknown';

export interface DataDirOwner {
  uid: number;
  gid: number;
  /** From /etc/passwd; undefined when the uid has no entry. */
  user?: string;
}

export interface DataDirInfo {
  /** The real path (symlinks resolved). */
  path: string;
  version: DssVersion;
  nodeType: DssNodeType;
  owner: DataDirOwner;
}

const nodeTypes: readonly DssNodeType[] = ['design', 'automation', 'api', 'govern'];

const dataDirHint =
  'Pass the DSS data directory (DATA_DIR, e.g. /home/dataiku/dss_data): the directory that holds dss-version.json, install.ini and bin/dss.';

/**
 * Check that `path` is a DSS data directory and describe it. Reads only; returns when every check
 * passed. Throws NOT_A_DATA_DIR naming what is missing: the directory itself, dss-version.json (or
 * its content), or bin/dss. A missing or unreadable install.ini gives nodeType `unknown`.
 */
export async function inspectDataDir(path: string): Promise<DataDirInfo> {
  let real: string;
  try {
    real = await realpath(path);
  } catch (error) {
    throw notADataDir(`No such directory: ${path}`, path, error);
  }
  const info = await stat(real);
  if (!info.isDirectory()) throw notADataDir(`${path} is not a directory`, path);

  const versionFile = join(real, 'dss-version.json');
  let versionText: string;
  try {
    versionText = await readFile(versionFile, 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw notADataDir(
      missing
        ? `${path} has no dss-version.json: it is not a DSS data directory`
        : `${versionFile} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      path,
      error,
    );
  }
  const version = parseDssVersion(versionText, versionFile);

  const dssScript = join(real, 'bin', 'dss');
  try {
    await access(dssScript, constants.F_OK);
  } catch (error) {
    throw notADataDir(`${path} has no bin/dss: it is not a complete DSS data directory`, path, error);
  }

  return {
    path: real,
    version,
    nodeType: await readNodeType(join(real, 'install.ini')),
    owner: { uid: info.uid, gid: info.gid, user: await userNameOf(info.uid) },
  };
}

/** The `[general] nodetype` of an install.ini; `unknown` when absent or not one DSS documents. */
export async function readNodeType(installIni: string): Promise<DssNodeType> {
  let text: string;
  try {
    text = await readFile(installIni, 'utf8');
  } catch {
    return 'unknown';
  }
  return nodeTypeIn(text);
}

/** Parse the node type out of install.ini text (INI: sections, `key = value`, `#`/`;` comments). */
export function nodeTypeIn(installIniText: string): DssNodeType {
  let section = '';
  for (const rawLine of installIniText.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!.trim().toLowerCase();
      continue;
    }
    const pair = /^([^=]+)=(.*)$/.exec(line);
    if (section === 'general' && pair && pair[1]!.trim().toLowerCase() === 'nodetype') {
      const value = pair[2]!.trim().toLowerCase();
      return (nodeTypes as readonly string[]).includes(value) ? (value as DssNodeType) : 'unknown';
    }
  }
  return 'unknown';
}

function notADataDir(message: string, path: string, cause?: unknown): DssnapError {
  return new DssnapError('NOT_A_DATA_DIR', message, { cause, hint: dataDirHint, details: { path } });
}
