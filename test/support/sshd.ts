/**
 * A throw-away OpenSSH server on 127.0.0.1 for remote-destination tests: its own host key, one authorized
 * client key, root login by key only, a known_hosts file so the client checks the host key for real.
 * Needs root and the Debian packages openssh-server and openssh-client.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTool, run } from '../../src/host/exec.js';

export interface TestSshd {
  port: number;
  /** An ssh command line for rsync `-e` and `sshCommand` options: port, identity, known_hosts, no prompts. */
  sshCommand: string;
  /** Stop the server and remove its keys. Idempotent. */
  stop(): Promise<void>;
}

/** Start sshd; returns once it accepts connections. Throws with a clear message when it cannot. */
export async function startSshd(): Promise<TestSshd> {
  const sshd = findTool('sshd');
  const sshKeygen = findTool('ssh-keygen');
  if (!sshd || !sshKeygen || !findTool('ssh')) {
    throw new Error(
      'sshd, ssh and ssh-keygen are required: apt-get install -y openssh-server openssh-client',
    );
  }
  if (process.getuid?.() !== 0)
    throw new Error('The test sshd runs as root (it logs in as root): run the tests as root');

  const dir = await mkdtemp(join(tmpdir(), 'dssnap-sshd-'));
  let child: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const hostKey = join(dir, 'host_ed25519');
    const clientKey = join(dir, 'client_ed25519');
    await run(sshKeygen, ['-q', '-t', 'ed25519', '-N', '', '-C', 'dssnap-test-host', '-f', hostKey]);
    await run(sshKeygen, ['-q', '-t', 'ed25519', '-N', '', '-C', 'dssnap-test-client', '-f', clientKey]);
    await writeFile(join(dir, 'authorized_keys'), await readFile(`${clientKey}.pub`), { mode: 0o600 });
    const port = await freePort();
    const hostPublicKey = (await readFile(`${hostKey}.pub`, 'utf8')).trim();
    await writeFile(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${hostPublicKey}\n`);
    const config = join(dir, 'sshd_config');
    await writeFile(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKey}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        // The key files live in a temp dir whose parents sshd's ownership checks would not accept.
        'StrictModes no',
        'LogLevel ERROR',
        '',
      ].join('\n'),
    );
    // Privilege separation directory, normally created by the service unit.
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
    await run(sshd, ['-t', '-f', config]);

    const output: string[] = [];
    child = spawn(sshd, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    await waitForPort(port, child, output);
    const sshCommand = [
      'ssh',
      `-p ${port}`,
      `-i ${clientKey}`,
      `-o UserKnownHostsFile=${join(dir, 'known_hosts')}`,
      '-o StrictHostKeyChecking=yes',
      '-o BatchMode=yes',
      '-o IdentitiesOnly=yes',
      '-o LogLevel=ERROR',
    ].join(' ');
    return { port, sshCommand, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('No port')),
      );
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, output: string[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`sshd exited with code ${child.exitCode}: ${output.join('')}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`sshd did not listen on 127.0.0.1:${port} within 10 s: ${output.join('')}`);
}
