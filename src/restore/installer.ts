/**
 * Restoring elsewhere (another path, another host, a newer DSS): the version check, the DSS installer in
 * upgrade mode (`INSTALL_DIR/installer.sh -d DATA_DIR -u`, which re-attaches and migrates the data
 * directory), and the follow-up the DSS migration documentation asks for. What can be done safely is
 * done (the installer; the list of the pyenv's packages saved for a reinstall; the code environments
 * listed); the rest is printed.
 */
import { constants } from 'node:fs';
import { access, chown, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dssCommand } from '../dss/control.js';
import type { DataDirInfo } from '../dss/layout.js';
import { compareDssVersions, type DssVersion, parseDssVersion } from '../dss/version.js';
import { DssnapError } from '../errors.js';
import { CommandError, lastLines, run } from '../host/exec.js';
import type { Logger } from '../log.js';

export interface InstallDir {
  path: string;
  version: DssVersion;
  installer: string;
}

/**
 * The DSS installation at `path`: its `dss-version.json` and `installer.sh`. Changes nothing. Throws
 * USAGE naming what is missing when `path` is not a DSS installation directory.
 */
export async function inspectInstallDir(path: string): Promise<InstallDir> {
  const versionFile = join(path, 'dss-version.json');
  const installer = join(path, 'installer.sh');
  let text: string;
  try {
    text = await readFile(versionFile, 'utf8');
    await access(installer, constants.X_OK);
  } catch (error) {
    throw new DssnapError(
      'USAGE',
      `${path} is not a DSS installation directory: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? `${(error as NodeJS.ErrnoException).path ?? 'a file'} is missing` : (error as Error).message}`,
      {
        cause: error,
        hint: 'Give --install-dir the directory the DSS kit was unpacked to (it holds installer.sh and dss-version.json), e.g. /opt/dataiku-dss-13.2.0.',
        details: { installDir: path },
      },
    );
  }
  return { path, version: parseDssVersion(text, versionFile), installer };
}

/**
 * Refuse to put a backup of `backup`'s DSS version onto an older DSS (`target`): DSS migrates data
 * directories forward only. Pure. Throws VERSION_MISMATCH (exit 5).
 */
export function checkVersionOrder(
  backup: Pick<DssVersion, 'productVersion' | 'confVersion'>,
  target: Pick<DssVersion, 'productVersion' | 'confVersion'>,
  targetName: string,
): void {
  if (compareDssVersions(backup, target) > 0) {
    throw new DssnapError(
      'VERSION_MISMATCH',
      `The backup is from DSS ${backup.productVersion} (conf ${backup.confVersion}), newer than ${targetName} (DSS ${target.productVersion}, conf ${target.confVersion}): DSS cannot go back to an older version`,
      {
        hint: `Install DSS ${backup.productVersion} or newer and restore with --install-dir pointing at it. Nothing was changed.`,
        details: { backup, target },
      },
    );
  }
}

export interface InstallerRun {
  command: string[];
  durationMs: number;
}

/**
 * Run `installer.sh -d DATA_DIR -u -y` as the owner of DATA_DIR (the installer, like bin/dss, is run as
 * the DSS user), its output streamed to the log line by line. Returns when it succeeded. Throws
 * COMMAND_FAILED with the tail of its output.
 */
export async function runInstaller(
  install: InstallDir,
  dataDir: Pick<DataDirInfo, 'path' | 'owner'>,
  options: { log: Logger; signal?: AbortSignal; timeoutMs?: number },
): Promise<InstallerRun> {
  const args = ['-d', dataDir.path, '-u', '-y'];
  // dssCommand knows how to run a DSS script as the owner: reuse it for the installer.
  const asOwner = dssCommand(dataDir, 'status');
  const command =
    asOwner.file === 'runuser'
      ? { file: 'runuser', args: [...asOwner.args.slice(0, 3), install.installer, ...args] }
      : { file: install.installer, args };
  const log = options.log.child({ installer: install.installer });
  log.info({ args }, 'Running the DSS installer');
  const tail: string[] = [];
  const keep = (line: string): void => {
    tail.push(line);
    if (tail.length > 20) tail.shift();
  };
  const started = performance.now();
  try {
    await run(command.file, command.args, {
      cwd: install.path,
      timeoutMs: options.timeoutMs ?? 3_600_000,
      discardStdout: true,
      onStdoutLine: (line) => {
        keep(line);
        log.info({ line }, 'installer.sh');
      },
      onStderrLine: (line) => {
        keep(line);
        log.warn({ line }, 'installer.sh');
      },
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    throw new DssnapError(
      error.isCanceled ? 'INTERRUPTED' : 'COMMAND_FAILED',
      `${install.installer} -d ${dataDir.path} -u failed (${error.timedOut ? 'timed out' : `exit code ${error.exitCode_ ?? 'unknown'}`}):\n${lastLines(tail.join('\n'), 10)}`,
      {
        cause: error,
        hint: 'The restore was undone. Read the installer output above (or in the log), fix the cause, and restore again.',
        details: { installer: install.installer, exitCode: error.exitCode_ },
      },
    );
  }
  return { command: [command.file, ...command.args], durationMs: Math.round(performance.now() - started) };
}

/** What was found and saved for the follow-up of a restore elsewhere. */
export interface FollowUp {
  codeEnvs: string[];
  /** The pyenv's packages, saved for `bin/pip install -r`. */
  savedPackageList?: string;
  userIsolation: boolean;
  /** Lines to print. */
  instructions: string[];
}

/**
 * Prepare and describe the follow-up of a restore elsewhere: list the code environments to rebuild, save
 * the pyenv's package list (`DATA_DIR/local-python-packages.txt`, from its `.dist-info` records, owned by
 * the DATA_DIR owner), and say what to do by hand. Only reads, apart from that one new file.
 */
export async function prepareFollowUp(
  dataDir: Pick<DataDirInfo, 'path' | 'owner'>,
  installDir: string,
): Promise<FollowUp> {
  const codeEnvs: string[] = [];
  for (const root of ['code-envs', 'acode-envs']) {
    for (const language of await listDir(join(dataDir.path, root))) {
      for (const env of await listDir(join(dataDir.path, root, language)))
        codeEnvs.push(`${language}/${env}`);
    }
  }
  const packages = await pyenvPackages(dataDir.path);
  let savedPackageList: string | undefined;
  if (packages.length > 0) {
    savedPackageList = join(dataDir.path, 'local-python-packages.txt');
    await writeFile(savedPackageList, `${packages.join('\n')}\n`, { mode: 0o644 });
    await chown(savedPackageList, dataDir.owner.uid, dataDir.owner.gid).catch(() => undefined);
  }
  const settings = await readFile(join(dataDir.path, 'config', 'general-settings.json'), 'utf8').catch(
    () => '',
  );
  const userIsolation = /"impersonation"\s*:\s*\{[^}]*"enabled"\s*:\s*true/.test(settings);
  const user = dataDir.owner.user ?? `uid ${dataDir.owner.uid}`;
  const instructions = [
    codeEnvs.length > 0
      ? `Rebuild the ${codeEnvs.length} code environment(s) (${codeEnvs.slice(0, 8).join(', ')}${codeEnvs.length > 8 ? ', …' : ''}): in DSS, Administration > Code Envs > each environment > Update, with "force rebuild".`
      : 'No code environment to rebuild.',
    savedPackageList
      ? `Reinstall the DSS Python environment's extra packages: ${dataDir.path}/bin/pip install -r ${savedPackageList} (the list was saved from the backup's pyenv).`
      : 'The DSS Python environment (pyenv) has no extra packages recorded.',
    `If the base Python of this host differs, move ${dataDir.path}/pyenv aside and run ${installDir}/installer.sh -d ${dataDir.path} -u -P <python3> first.`,
    `To start DSS at boot on this host, run as root: ${installDir}/scripts/install/install-boot.sh ${dataDir.path} ${user}.`,
    ...(userIsolation
      ? [`User Isolation is enabled: run as root ${dataDir.path}/bin/dssadmin install-impersonation ${user}.`]
      : []),
  ];
  return {
    codeEnvs,
    ...(savedPackageList ? { savedPackageList } : {}),
    userIsolation,
    instructions,
  };
}

async function pyenvPackages(dataDir: string): Promise<string[]> {
  const lib = join(dataDir, 'pyenv', 'lib');
  const packages: string[] = [];
  for (const python of await listDir(lib)) {
    for (const entry of await listDir(join(lib, python, 'site-packages'))) {
      const match = /^(.+?)-([^-]+)\.dist-info$/.exec(entry);
      if (match) packages.push(`${match[1]}==${match[2]}`);
    }
  }
  return [...new Set(packages)].sort();
}

async function listDir(path: string): Promise<string[]> {
  return (await readdir(path, { withFileTypes: true }).catch(() => []))
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
}
