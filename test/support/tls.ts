/**
 * A self-signed TLS certificate for `IP:127.0.0.1` and `DNS:localhost`, made at test time with
 * openssl, for fake cloud APIs that must be served over HTTPS (the Azure SDK refuses to send a bearer
 * token over http: DESIGN.md §3). Clients trust it with `https.Agent({ ca })` in-process, or with
 * `NODE_EXTRA_CA_CERTS=<caFile>` in a child process.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/host/exec.js';

export interface TestCertificate {
  /** PEM certificate; it is its own CA. */
  cert: string;
  /** PEM private key. */
  key: string;
  /** Path of the PEM certificate, for NODE_EXTRA_CA_CERTS. Valid until `dispose()`. */
  caFile: string;
  /** An https.Agent that trusts the certificate (and nothing else). */
  agent(): Agent;
  /** Remove the temp dir holding the files. Idempotent. */
  dispose(): Promise<void>;
}

/** Make a fresh key and self-signed certificate (EC P-256, valid 2 days). Throws if openssl fails. */
export async function createTestCertificate(): Promise<TestCertificate> {
  const dir = await mkdtemp(join(tmpdir(), 'dssnap-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  try {
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
    ]);
    const cert = await readFile(certFile, 'utf8');
    const key = await readFile(keyFile, 'utf8');
    return {
      cert,
      key,
      caFile: certFile,
      agent: () => new Agent({ ca: cert, keepAlive: false }),
      dispose: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
