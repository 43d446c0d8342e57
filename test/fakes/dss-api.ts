/**
 * A small stateful fake of the DSS public API on 127.0.0.1 (random port), for the running-jobs check:
 * projects, their jobs (in the `list_jobs` shape: `def`, `state`, `stableState`) and futures (scenario
 * runs and other long tasks). Authenticates like DSS: the API key as the basic-auth user; a wrong or
 * missing key gets 401.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeJobState = 'NOT_STARTED' | 'RUNNING' | 'DONE' | 'FAILED' | 'ABORTED';

export interface FakeFuture {
  /** The future's jobId. */
  id: string;
  /** A scenario run (listed with withScenarios=true) or another long task (withNotScenarios). */
  kind: 'scenario' | 'future';
  project?: string;
  /** The scenario id (objectId of the target), for scenario futures. */
  scenarioId?: string;
  displayName?: string;
  /** False once finished: DSS then reports alive=false, hasResult=true. Default true. */
  alive?: boolean;
}

export interface FakeRequest {
  method: string;
  /** Path without the query. */
  path: string;
  query: Record<string, string>;
  authorized: boolean;
}

export interface FakeDssApi {
  /** Base URL, e.g. `http://127.0.0.1:39123` (no trailing slash). */
  url: string;
  setProjects(keys: readonly string[]): void;
  addJob(project: string, job: { id: string; state: FakeJobState }): void;
  setJobState(project: string, id: string, state: FakeJobState): void;
  addFuture(future: FakeFuture): void;
  setFutureAlive(id: string, alive: boolean): void;
  /** Run `hook` after each answer (e.g. delete a project right after it was listed). */
  afterEachRequest(hook: ((request: FakeRequest) => void) | undefined): void;
  /** Answer every request with this HTTP status (e.g. 500) until called with undefined. */
  failWith(status: number | undefined): void;
  /** Every request received, in order. */
  readonly requests: FakeRequest[];
  close(): Promise<void>;
}

interface JobRecord {
  id: string;
  state: FakeJobState;
  initiationTimestamp: number;
}

/** Start the fake; resolves when it listens. */
export async function startFakeDssApi(options: { apiKey: string }): Promise<FakeDssApi> {
  const projects = new Map<string, JobRecord[]>();
  const futures = new Map<string, FakeFuture & { startTime: number }>();
  const requests: FakeRequest[] = [];
  let failure: number | undefined;
  let afterRequest: ((request: FakeRequest) => void) | undefined;

  function handle(request: IncomingMessage, response: ServerResponse): void {
    answer(request, response);
    const last = requests.at(-1);
    if (afterRequest && last) afterRequest(last);
  }

  function answer(request: IncomingMessage, response: ServerResponse): void {
    const parsed = new URL(request.url ?? '/', 'http://fake');
    const authorized = basicAuthUser(request.headers.authorization) === options.apiKey;
    requests.push({
      method: request.method ?? 'GET',
      path: parsed.pathname,
      query: Object.fromEntries(parsed.searchParams),
      authorized,
    });
    if (!authorized) {
      sendJson(response, 401, {
        errorType: 'com.dataiku.dip.exceptions.UnauthorizedException',
        message: 'Not authenticated',
        detailedMessage: 'Not authenticated',
      });
      return;
    }
    if (failure !== undefined) {
      sendJson(response, failure, { errorType: 'java.lang.IllegalStateException', message: 'Backend error' });
      return;
    }
    if (request.method !== 'GET') {
      sendJson(response, 405, { errorType: 'MethodNotAllowed', message: `${request.method} not supported` });
      return;
    }
    const path = parsed.pathname.replace(/\/+$/, '/');
    if (path === '/public/api/projects/') {
      sendJson(
        response,
        200,
        [...projects.keys()].map((projectKey) => ({
          projectKey,
          name: projectKey.toLowerCase(),
          ownerLogin: 'admin',
        })),
      );
      return;
    }
    const jobsPath = /^\/public\/api\/projects\/([^/]+)\/jobs\/$/.exec(path);
    if (jobsPath) {
      const key = decodeURIComponent(jobsPath[1]!);
      const jobs = projects.get(key);
      if (!jobs) {
        sendJson(response, 404, {
          errorType: 'com.dataiku.dip.server.controllers.NotFoundException',
          message: `Project ${key} not found`,
        });
        return;
      }
      sendJson(
        response,
        200,
        jobs.map((job) => jobJson(key, job)),
      );
      return;
    }
    if (path === '/public/api/futures/') {
      const withScenarios = parsed.searchParams.get('withScenarios') === 'true';
      const withNotScenarios = parsed.searchParams.get('withNotScenarios') !== 'false';
      const listed = [...futures.values()].filter((future) =>
        future.kind === 'scenario' ? withScenarios : withNotScenarios,
      );
      sendJson(response, 200, listed.map(futureJson));
      return;
    }
    sendJson(response, 404, { errorType: 'NotFound', message: `No API at ${parsed.pathname}` });
  }

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    setProjects(keys) {
      for (const key of [...projects.keys()]) if (!keys.includes(key)) projects.delete(key);
      for (const key of keys) if (!projects.has(key)) projects.set(key, []);
    },
    addJob(project, job) {
      const jobs = projects.get(project);
      if (!jobs) throw new Error(`Fake DSS API: no project ${project}; call setProjects first`);
      jobs.push({ ...job, initiationTimestamp: Date.now() });
    },
    setJobState(project, id, state) {
      const job = projects.get(project)?.find((candidate) => candidate.id === id);
      if (!job) throw new Error(`Fake DSS API: no job ${id} in project ${project}`);
      job.state = state;
    },
    addFuture(future) {
      futures.set(future.id, { ...future, startTime: Date.now() });
    },
    setFutureAlive(id, alive) {
      const future = futures.get(id);
      if (!future) throw new Error(`Fake DSS API: no future ${id}`);
      future.alive = alive;
    },
    afterEachRequest(hook) {
      afterRequest = hook;
    },
    failWith(status) {
      failure = status;
    },
    close() {
      return new Promise((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      });
    },
  };
}

function jobJson(projectKey: string, job: JobRecord): Record<string, unknown> {
  const finished = job.state === 'DONE' || job.state === 'FAILED' || job.state === 'ABORTED';
  return {
    def: {
      id: job.id,
      projectKey,
      name: job.id.replace(/_\d{4}-.*$/, ''),
      type: 'NON_RECURSIVE_FORCED_BUILD',
      initiator: 'admin',
      initiationTimestamp: job.initiationTimestamp,
      triggeredFrom: 'API',
    },
    state: job.state,
    stableState: finished,
    startTime: job.state === 'NOT_STARTED' ? 0 : job.initiationTimestamp,
    endTime: finished ? Date.now() : 0,
  };
}

function futureJson(future: FakeFuture & { startTime: number }): Record<string, unknown> {
  const alive = future.alive ?? true;
  return {
    jobId: future.id,
    alive,
    hasResult: !alive,
    aborted: false,
    unknown: false,
    startTime: future.startTime,
    runningTime: Date.now() - future.startTime,
    jobDisplayName:
      future.displayName ?? (future.kind === 'scenario' ? `Scenario ${future.scenarioId}` : future.id),
    payload: {
      ...(future.kind === 'scenario'
        ? {
            targets: [
              { type: 'SCENARIO', projectKey: future.project, objectId: future.scenarioId ?? future.id },
            ],
          }
        : { targets: future.project ? [{ type: 'PROJECT', projectKey: future.project }] : [] }),
    },
  };
}

function basicAuthUser(header: string | undefined): string | undefined {
  const match = /^Basic\s+(.+)$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? decoded : decoded.slice(0, colon);
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}
