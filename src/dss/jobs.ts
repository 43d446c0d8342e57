/**
 * The "no job is running" check the DSS backup documentation asks for before stopping DSS, through the
 * DSS public API: running jobs per project, running scenarios and other long tasks (futures). The API
 * key is the HTTP basic-auth user; it never appears in an error message or a log line.
 */
import { readFile, stat as statFile } from 'node:fs/promises';
import { DssnapError } from '../errors.js';

export interface RunningWork {
  kind: 'job' | 'scenario' | 'future';
  project?: string;
  id: string;
  description: string;
}

export interface DssApiOptions {
  /** Base URL of DSS, e.g. `http://localhost:11200` (a trailing `/public/api` is accepted). */
  url: string;
  apiKey: string;
  signal?: AbortSignal;
  /** Per request; default 10 s. */
  timeoutMs?: number;
}

export interface WaitForNoRunningWorkOptions extends DssApiOptions {
  /** How long to wait for running work to finish; 0 (the default) checks once. */
  maxWaitMs?: number;
  /** Delay between checks; default 10 s. */
  pollMs?: number;
  /** Called before each wait with what still runs and how long we have waited. */
  onWait?: (running: readonly RunningWork[], waitedMs: number) => void;
}

export interface ApiKeyResult {
  apiKey: string;
  source: 'env' | 'file';
  /** The key file, when the key came from one. */
  file?: string;
  /** Set when the key file is readable by group or others. */
  warning?: string;
}

/** The environment variable holding the API key. Never a flag: flags show up in `ps` and shell history. */
export const apiKeyEnvVar = 'DSSNAP_DSS_API_KEY';

/** Job states meaning "in flight" (DSS: NOT_STARTED is queued and starts at any moment). */
const activeJobStates = new Set(['RUNNING', 'NOT_STARTED']);

const projectConcurrency = 8;

/**
 * Everything running in DSS now: jobs of every project, scenarios and other futures of all users.
 * Changes nothing. Throws CONFIG_INVALID when the key is refused (HTTP 401/403), and JOBS_RUNNING
 * (exit code "refused", details.reason `api-unreachable` / `api-error`) when the API cannot be asked,
 * because then nothing proves that no job runs.
 */
export async function listRunningWork(options: DssApiOptions): Promise<RunningWork[]> {
  const api = apiClient(options);
  const projects = await api.getJson('/projects/');
  const keys = asArray(projects, '/projects/')
    .map((project) => stringField(project, 'projectKey'))
    .filter((key): key is string => key !== undefined);

  const work: RunningWork[] = [];
  for (let start = 0; start < keys.length; start += projectConcurrency) {
    const batch = keys.slice(start, start + projectConcurrency);
    const lists = await Promise.all(
      batch.map((key) => api.getJson(`/projects/${encodeURIComponent(key)}/jobs/`, { notFoundAs: [] })),
    );
    lists.forEach((jobs, index) => {
      work.push(...runningJobs(batch[index]!, asArray(jobs, `/projects/${batch[index]}/jobs/`)));
    });
  }

  // Two queries instead of guessing from the payload which futures are scenarios (as dataikuapi does).
  const scenarios = await api.getJson('/futures/?withScenarios=true&withNotScenarios=false&allUsers=true');
  work.push(...aliveFutures(asArray(scenarios, '/futures/'), 'scenario'));
  const futures = await api.getJson('/futures/?withScenarios=false&withNotScenarios=true&allUsers=true');
  work.push(...aliveFutures(asArray(futures, '/futures/'), 'future'));
  return work;
}

/**
 * Poll until nothing runs, then return how long that took. Throws JOBS_RUNNING listing what still runs
 * when `maxWaitMs` (default 0: one check) is exhausted, and INTERRUPTED when `signal` aborts.
 */
export async function waitForNoRunningWork(
  options: WaitForNoRunningWorkOptions,
): Promise<{ waitedMs: number }> {
  const maxWaitMs = options.maxWaitMs ?? 0;
  const pollMs = options.pollMs ?? 10_000;
  const started = performance.now();
  for (;;) {
    const running = await listRunningWork(options);
    const waitedMs = performance.now() - started;
    if (running.length === 0) return { waitedMs };
    if (waitedMs + pollMs > maxWaitMs) throw jobsRunning(running, waitedMs);
    options.onWait?.(running, waitedMs);
    await sleep(pollMs, options.signal);
  }
}

/**
 * The DSS API key: from the file `file` when given (trimmed), else from DSSNAP_DSS_API_KEY, else
 * undefined. A key file readable by group or others is used, with a `warning`. Throws CONFIG_INVALID
 * when the file cannot be read or is empty.
 */
export async function readApiKey(
  options: { env?: NodeJS.ProcessEnv; file?: string } = {},
): Promise<ApiKeyResult | undefined> {
  if (options.file !== undefined) {
    const file = options.file;
    let text: string;
    let mode: number;
    try {
      text = await readFile(file, 'utf8');
      mode = (await statFile(file)).mode;
    } catch (error) {
      throw new DssnapError(
        'CONFIG_INVALID',
        `Cannot read the DSS API key file ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
        {
          cause: error,
          hint: 'Give a file that holds only the API key, readable by root (chmod 600).',
          details: { file },
        },
      );
    }
    const apiKey = text.trim();
    if (apiKey === '') {
      throw new DssnapError('CONFIG_INVALID', `The DSS API key file ${file} is empty`, {
        hint: 'Write the key of a DSS API key with admin rights into it (one line).',
        details: { file },
      });
    }
    const result: ApiKeyResult = { apiKey, source: 'file', file };
    if ((mode & 0o044) !== 0) {
      result.warning = `The DSS API key file ${file} is readable by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}): run 'chmod 600 ${file}'`;
    }
    return result;
  }
  const fromEnv = (options.env ?? process.env)[apiKeyEnvVar]?.trim();
  return fromEnv ? { apiKey: fromEnv, source: 'env' } : undefined;
}

/** Base URL without credentials, trailing slashes or a trailing `/public/api`. */
export function normalizeDssUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DssnapError('USAGE', `Invalid DSS URL '${safeUrl(url)}': it is not an absolute URL`, {
      hint: 'Pass --dss-url like http://localhost:11200 (the address of the DSS web interface).',
    });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new DssnapError('USAGE', `Invalid DSS URL '${safeUrl(url)}': the scheme must be http or https`, {
      hint: 'Pass --dss-url like http://localhost:11200.',
    });
  }
  parsed.username = '';
  parsed.password = '';
  parsed.search = '';
  parsed.hash = '';
  return parsed.href.replace(/\/+$/, '').replace(/\/public\/api$/, '');
}

interface ApiClient {
  getJson(path: string, options?: { notFoundAs?: unknown }): Promise<unknown>;
}

function apiClient(options: DssApiOptions): ApiClient {
  const base = normalizeDssUrl(options.url);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const authorization = `Basic ${Buffer.from(`${options.apiKey}:`).toString('base64')}`;
  return {
    async getJson(path, { notFoundAs } = {}) {
      const url = `${base}/public/api${path}`;
      const signals = [AbortSignal.timeout(timeoutMs), ...(options.signal ? [options.signal] : [])];
      let response: Response;
      try {
        response = await fetch(url, {
          headers: { authorization, accept: 'application/json' },
          signal: AbortSignal.any(signals),
        });
      } catch (error) {
        if (options.signal?.aborted) {
          throw new DssnapError('INTERRUPTED', 'Interrupted while asking DSS for running jobs', {
            cause: error,
          });
        }
        const reason =
          (error as Error).name === 'TimeoutError'
            ? `no answer within ${Number((timeoutMs / 1000).toFixed(1))} s`
            : causeText(error);
        throw new DssnapError(
          'JOBS_RUNNING',
          `Cannot check for running DSS jobs: the DSS API at ${base} is unreachable (${reason})`,
          {
            cause: error,
            hint: 'Check --dss-url (the address of the DSS web interface, e.g. http://localhost:11200) and that DSS runs, or pass --force to go on without the check.',
            details: { reason: 'api-unreachable', url: base },
          },
        );
      }
      if (response.status === 401 || response.status === 403) {
        await response.body?.cancel();
        throw new DssnapError(
          'CONFIG_INVALID',
          `The DSS API at ${base} refused the API key (HTTP ${response.status} for GET /public/api${path})`,
          {
            hint: `Check the key given in ${apiKeyEnvVar} or the key file: it must be a valid DSS API key with admin rights (to see every project's jobs and all users' scenarios).`,
            details: { reason: 'api-key-refused', url: base, status: response.status },
          },
        );
      }
      if (response.status === 404 && notFoundAs !== undefined) {
        // A project deleted between the two calls: it runs nothing.
        await response.body?.cancel();
        return notFoundAs;
      }
      const text = await response.text();
      if (!response.ok) {
        // The body goes into the message: make sure it cannot carry the key back to us.
        const body = text.split(options.apiKey).join('[redacted]').slice(0, 200);
        throw apiError(base, path, `HTTP ${response.status}${body ? `: ${body}` : ''}`);
      }
      try {
        return JSON.parse(text) as unknown;
      } catch (error) {
        throw apiError(base, path, 'the answer is not JSON', error);
      }
    },
  };
}

function runningJobs(projectKey: string, jobs: readonly unknown[]): RunningWork[] {
  const work: RunningWork[] = [];
  for (const job of jobs) {
    const record = asRecord(job);
    const baseStatus = asRecord(record.baseStatus);
    const def = asRecord(record.def ?? baseStatus.def);
    const state = stringField(baseStatus, 'state') ?? stringField(record, 'state');
    if (!state || !activeJobStates.has(state)) continue;
    const id =
      stringField(def, 'id') ?? stringField(record, 'id') ?? stringField(record, 'jobId') ?? '(unknown id)';
    const initiator = stringField(def, 'initiator');
    work.push({
      kind: 'job',
      project: projectKey,
      id,
      description: `job ${projectKey}/${id} ${state.toLowerCase()}${initiator ? `, started by ${initiator}` : ''}`,
    });
  }
  return work;
}

function aliveFutures(futures: readonly unknown[], kind: 'scenario' | 'future'): RunningWork[] {
  const work: RunningWork[] = [];
  for (const future of futures) {
    const record = asRecord(future);
    if (record.alive === false || record.hasResult === true || record.aborted === true) continue;
    const payload = asRecord(record.payload);
    const target = asRecord(Array.isArray(payload.targets) ? payload.targets[0] : undefined);
    const project = stringField(target, 'projectKey') ?? stringField(payload, 'projectKey');
    const jobId = stringField(record, 'jobId') ?? '(unknown id)';
    const running =
      typeof record.runningTime === 'number'
        ? `, running for ${Math.round(record.runningTime / 1000)} s`
        : '';
    if (kind === 'scenario') {
      const scenario = stringField(target, 'objectId') ?? stringField(payload, 'scenarioId') ?? jobId;
      work.push({
        kind,
        ...(project ? { project } : {}),
        id: scenario,
        description: `scenario ${project ? `${project}/` : ''}${scenario}${running}`,
      });
    } else {
      const name =
        stringField(record, 'jobDisplayName') ?? stringField(payload, 'displayName') ?? 'long-running task';
      work.push({
        kind,
        ...(project ? { project } : {}),
        id: jobId,
        description: `${name} (future ${jobId}${project ? ` in ${project}` : ''})${running}`,
      });
    }
  }
  return work;
}

function jobsRunning(running: readonly RunningWork[], waitedMs: number): DssnapError {
  const shown = running.slice(0, 10).map((work) => work.description);
  const more = running.length > shown.length ? `; and ${running.length - shown.length} more` : '';
  const waited = waitedMs >= 1000 ? ` after waiting ${Math.round(waitedMs / 1000)} s` : '';
  return new DssnapError(
    'JOBS_RUNNING',
    `DSS is busy${waited}: ${running.length} running (${shown.join('; ')}${more})`,
    {
      hint: 'Wait for them to finish (or abort them in DSS), let dssnap wait longer, or pass --force to back up anyway.',
      details: {
        reason: 'work-running',
        running: running.map(({ kind, project, id }) => ({ kind, project, id })),
      },
    },
  );
}

function apiError(base: string, path: string, what: string, cause?: unknown): DssnapError {
  return new DssnapError(
    'JOBS_RUNNING',
    `Cannot check for running DSS jobs: GET /public/api${path} failed (${what})`,
    {
      cause,
      hint: 'Check --dss-url and the DSS backend logs, or pass --force to go on without the check.',
      details: { reason: 'api-error', url: base, path },
    },
  );
}

function asArray(value: unknown, path: string): unknown[] {
  if (Array.isArray(value)) return value;
  throw new DssnapError(
    'JOBS_RUNNING',
    `Cannot check for running DSS jobs: GET /public/api${path} did not return a list`,
    {
      hint: 'Check that --dss-url points at DSS itself, not at a proxy login page.',
      details: { reason: 'api-error', path },
    },
  );
}

function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function stringField(value: unknown, key: string): string | undefined {
  const field = asRecord(value)[key];
  return typeof field === 'string' && field !== '' ? field : undefined;
}

/** The innermost cause of a fetch failure ("connect ECONNREFUSED 127.0.0.1:1"). */
function causeText(error: unknown): string {
  let current: unknown = error;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}

/** A URL as safe to print: without user and password. */
function safeUrl(url: string): string {
  return url.replace(/\/\/[^/@]*@/, '//');
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new DssnapError('INTERRUPTED', 'Interrupted while waiting for DSS jobs to finish'));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new DssnapError('INTERRUPTED', 'Interrupted while waiting for DSS jobs to finish'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
