import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeDssApi, startFakeDssApi } from '../../test/fakes/dss-api.js';
import { listRunningWork, normalizeDssUrl, readApiKey, waitForNoRunningWork } from './jobs.js';

const apiKey = 'dkuaps-SECRETKEY0123456789abcdef';

describe('running work, against a fake DSS public API', () => {
  let api: FakeDssApi;

  beforeEach(async () => {
    api = await startFakeDssApi({ apiKey });
    api.setProjects(['SALES', 'CHURN']);
  });

  afterEach(async () => {
    await api.close();
  });

  it('finds nothing on an idle DSS, asking every project and all users’ futures with the key', async () => {
    api.addJob('SALES', { id: 'Build_orders_2024-03-01T10-00-00.000', state: 'DONE' });

    const running = await listRunningWork({ url: api.url, apiKey });

    expect(running).toEqual([]);
    expect(api.requests.map((r) => r.path)).toEqual([
      '/public/api/projects/',
      '/public/api/projects/SALES/jobs/',
      '/public/api/projects/CHURN/jobs/',
      '/public/api/futures/',
      '/public/api/futures/',
    ]);
    expect(api.requests.every((r) => r.authorized)).toBe(true);
    expect(api.requests[3]!.query).toMatchObject({ withScenarios: 'true', allUsers: 'true' });
  });

  it('lists running and queued jobs, running scenarios and other futures, and ignores finished ones', async () => {
    api.addJob('SALES', { id: 'Build_orders_1', state: 'RUNNING' });
    api.addJob('SALES', { id: 'Build_orders_0', state: 'DONE' });
    api.addJob('CHURN', { id: 'Build_scores_1', state: 'FAILED' });
    api.addJob('CHURN', { id: 'Build_scores_2', state: 'ABORTED' });
    api.addJob('CHURN', { id: 'Build_scores_3', state: 'NOT_STARTED' });
    api.addFuture({ id: 'f-scn', kind: 'scenario', project: 'CHURN', scenarioId: 'NIGHTLY' });
    api.addFuture({ id: 'f-done', kind: 'scenario', project: 'SALES', scenarioId: 'HOURLY', alive: false });
    api.addFuture({ id: 'f-export', kind: 'future', project: 'SALES', displayName: 'Export dataset orders' });

    const running = await listRunningWork({ url: `${api.url}/`, apiKey });

    expect(running).toEqual([
      {
        kind: 'job',
        project: 'SALES',
        id: 'Build_orders_1',
        description: expect.stringContaining('job SALES/Build_orders_1 running'),
      },
      {
        kind: 'job',
        project: 'CHURN',
        id: 'Build_scores_3',
        description: expect.stringContaining('not_started'),
      },
      {
        kind: 'scenario',
        project: 'CHURN',
        id: 'NIGHTLY',
        description: expect.stringContaining('scenario CHURN/NIGHTLY'),
      },
      {
        kind: 'future',
        project: 'SALES',
        id: 'f-export',
        description: expect.stringContaining('Export dataset orders'),
      },
    ]);
  });

  it('ignores a project deleted between the project list and its jobs', async () => {
    api.addJob('SALES', { id: 'Build_1', state: 'RUNNING' });
    api.addJob('CHURN', { id: 'Build_2', state: 'RUNNING' });
    api.afterEachRequest((request) => {
      if (request.path === '/public/api/projects/') api.setProjects(['SALES']);
    });

    const running = await listRunningWork({ url: api.url, apiKey });

    expect(running.map((r) => r.id)).toEqual(['Build_1']);
    expect(api.requests.map((r) => r.path)).toContain('/public/api/projects/CHURN/jobs/');
  });

  it('waits until the running job finishes, reporting each wait', async () => {
    api.addJob('SALES', { id: 'Build_long', state: 'RUNNING' });
    const waits: string[][] = [];

    const result = await waitForNoRunningWork({
      url: api.url,
      apiKey,
      maxWaitMs: 5_000,
      pollMs: 100,
      onWait: (running) => {
        waits.push(running.map((r) => r.id));
        // The job finishes after the second wait, however slow the machine is.
        if (waits.length === 2) api.setJobState('SALES', 'Build_long', 'DONE');
      },
    });

    expect(result.waitedMs).toBeGreaterThanOrEqual(200);
    expect(waits.length).toBeGreaterThanOrEqual(2);
    expect(waits[0]).toEqual(['Build_long']);
  });

  it('gives up with JOBS_RUNNING naming what still runs', async () => {
    api.addJob('CHURN', { id: 'Build_forever', state: 'RUNNING' });
    api.addFuture({ id: 'f1', kind: 'scenario', project: 'CHURN', scenarioId: 'WEEKLY' });

    const wait = waitForNoRunningWork({ url: api.url, apiKey, maxWaitMs: 300, pollMs: 100 });

    await expect(wait).rejects.toMatchObject({
      code: 'JOBS_RUNNING',
      exitCode: 5,
      message: expect.stringMatching(
        /DSS is busy: 2 running \(job CHURN\/Build_forever running.*; scenario CHURN\/WEEKLY/,
      ),
      hint: expect.stringContaining('--force'),
    });
  });

  it('refuses with one check when maxWaitMs is not given', async () => {
    api.addJob('SALES', { id: 'Build_now', state: 'RUNNING' });

    const wait = waitForNoRunningWork({ url: api.url, apiKey });

    await expect(wait).rejects.toMatchObject({ code: 'JOBS_RUNNING' });
    expect(api.requests.filter((r) => r.path === '/public/api/projects/')).toHaveLength(1);
  });

  it('says a wrong key was refused, without showing either key', async () => {
    const wrongKey = 'dkuaps-WRONGKEY9999';

    const error = await listRunningWork({ url: api.url, apiKey: wrongKey }).catch((e: unknown) => e);

    expect(error).toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('refused the API key (HTTP 401'),
    });
    const everything = JSON.stringify({
      ...(error as object),
      message: (error as Error).message,
      hint: (error as { hint: string }).hint,
    });
    expect(everything).not.toContain(wrongKey);
    expect(everything).not.toContain(apiKey);
    expect(api.requests[0]!.authorized).toBe(false);
  });

  it('refuses when the API fails, without echoing the key the server may send back', async () => {
    api.failWith(500);

    const error = await listRunningWork({ url: api.url, apiKey }).catch((e: unknown) => e);

    expect(error).toMatchObject({
      code: 'JOBS_RUNNING',
      message: expect.stringContaining('GET /public/api/projects/ failed (HTTP 500'),
      details: { reason: 'api-error' },
    });
    expect((error as Error).message).not.toContain(apiKey);
  });
});

describe('an unreachable DSS API', () => {
  it('refuses with a message that says to check --dss-url or use --force, and no key', async () => {
    const closed = await startFakeDssApi({ apiKey });
    const url = closed.url;
    await closed.close();

    const error = await listRunningWork({
      url: url.replace('http://', `http://user:${apiKey}@`),
      apiKey,
    }).catch((e: unknown) => e);

    expect(error).toMatchObject({
      code: 'JOBS_RUNNING',
      exitCode: 5,
      message: expect.stringMatching(
        /the DSS API at http:\/\/127\.0\.0\.1:\d+ is unreachable \(connect ECONNREFUSED/,
      ),
      hint: expect.stringMatching(/--dss-url.*--force/),
      details: { reason: 'api-unreachable' },
    });
    expect(
      JSON.stringify({ m: (error as Error).message, d: (error as { details: unknown }).details }),
    ).not.toContain(apiKey);
  });

  it('times out a DSS that does not answer', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;

    try {
      const list = listRunningWork({ url: `http://127.0.0.1:${port}`, apiKey, timeoutMs: 300 });

      await expect(list).rejects.toThrow(
        /the DSS API at http:\/\/127\.0\.0\.1:\d+ is unreachable \(no answer within 0\.3 s\)/,
      );
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

describe('readApiKey', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dssnap-apikey-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the key from DSSNAP_DSS_API_KEY, trimmed', async () => {
    const key = await readApiKey({ env: { DSSNAP_DSS_API_KEY: `  ${apiKey}\n` } });

    expect(key).toEqual({ apiKey, source: 'env' });
  });

  it('returns undefined when no key is configured', async () => {
    const key = await readApiKey({ env: {} });

    expect(key).toBeUndefined();
  });

  it('prefers the key file and warns when others can read it', async () => {
    const file = join(dir, 'open-key');
    await writeFile(file, `${apiKey}\n`);
    await chmod(file, 0o644);

    const key = await readApiKey({ env: { DSSNAP_DSS_API_KEY: 'from-env' }, file });

    expect(key).toMatchObject({ apiKey, source: 'file', file });
    expect(key!.warning).toBe(
      `The DSS API key file ${file} is readable by other users (mode 0644): run 'chmod 600 ${file}'`,
    );
  });

  it('reads a private key file without a warning', async () => {
    const file = join(dir, 'private-key');
    await writeFile(file, apiKey, { mode: 0o600 });

    const key = await readApiKey({ env: {}, file });

    expect(key).toEqual({ apiKey, source: 'file', file });
  });

  it.each([
    ['missing', (d: string) => join(d, 'nope'), /Cannot read the DSS API key file .*nope \(ENOENT\)/],
    ['empty', (d: string) => join(d, 'empty'), /The DSS API key file .*empty is empty/],
  ])('refuses a %s key file with CONFIG_INVALID', async (_, path, message) => {
    await writeFile(join(dir, 'empty'), '  \n', { mode: 0o600 });

    const read = readApiKey({ env: {}, file: path(dir) });

    await expect(read).rejects.toThrow(message);
    await expect(read).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});

describe('normalizeDssUrl', () => {
  it.each([
    ['http://localhost:11200', 'http://localhost:11200'],
    ['http://localhost:11200/', 'http://localhost:11200'],
    ['https://dss.example.com/public/api/', 'https://dss.example.com'],
    ['http://admin:secret@dss:11200/dss/', 'http://dss:11200/dss'],
  ])('turns %s into %s', (url, expected) => {
    const normalized = normalizeDssUrl(url);

    expect(normalized).toBe(expected);
  });

  it.each([
    ['localhost:11200', /the scheme must be http or https|not an absolute URL/],
    ['not a url', /not an absolute URL/],
    ['ftp://dss', /the scheme must be http or https/],
  ])('refuses %s with USAGE', (url, message) => {
    const normalize = (): unknown => normalizeDssUrl(url);

    expect(normalize).toThrow(message);
  });
});
