/**
 * moto's EC2 emulator (`python3 -m moto.server`) on a free loopback port, for tests that drive the
 * real AWS SDK over HTTP. Installed in this machine image's python3; elsewhere `pip install 'moto[server]'`
 * (or a venv: set MOTO_PYTHON to its python).
 * Always `stop()` it (afterAll): it is a child process.
 */
import { createServer } from 'node:net';
import { execa, type ResultPromise } from 'execa';

export interface Moto {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  port: number;
  /** Forget every resource (POST /moto-api/reset). */
  reset(): Promise<void>;
  /** Stop the server and wait for it to exit. Idempotent. */
  stop(): Promise<void>;
}

/** Start moto and wait until it answers. Throws with moto's output when it does not start. */
export async function startMoto(options: { startTimeoutMs?: number } = {}): Promise<Moto> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let output = '';
  const python = process.env.MOTO_PYTHON || 'python3';
  const child: ResultPromise = execa(python, ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    reject: false,
    stdin: 'ignore',
    all: true,
    buffer: false,
  });
  child.all?.on('data', (chunk: Buffer) => {
    output = `${output}${chunk.toString()}`.slice(-4000);
  });
  let exited = false;
  const done = child.then(() => {
    exited = true;
  });

  async function stop(): Promise<void> {
    if (!exited) child.kill('SIGTERM');
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 5_000))]);
    if (!exited) {
      child.kill('SIGKILL');
      await done;
    }
  }

  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  while (true) {
    if (exited)
      throw new Error(`moto exited at start-up (is moto[server] installed for ${python}?):\n${output}`);
    try {
      const response = await fetch(`${endpoint}/moto-api/data.json`, { signal: AbortSignal.timeout(1000) });
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`moto did not answer on ${endpoint} within the start timeout:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  return {
    endpoint,
    port,
    reset: async () => {
      const response = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!response.ok) throw new Error(`moto reset failed: HTTP ${response.status}`);
    },
    stop,
  };
}

/** A port free right now on 127.0.0.1 (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}
