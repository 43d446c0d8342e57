/**
 * A fault-injecting HTTP proxy, for any JSON or XML API (AWS Query, GCP REST, Azure ARM): it forwards
 * every request to the real or emulated server and records it; chosen requests fail instead — with a
 * status and body, a delay (a timeout for a client with a shorter one) or a connection reset — the first
 * N times, after M successes, or always. A fault can also hit *after* the upstream did the work, so the
 * client sees a failure of a call that succeeded (the ambiguous case). Hooks see every upstream answer
 * before the client does (the host simulator attaches a device there).
 */
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';

export interface ProxyRequest {
  method: string;
  /** Path and query, as sent. */
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** What `classify` named it (the AWS action, a REST verb + resource…); `METHOD path` by default. */
  name: string;
}

export interface ProxyExchange {
  request: ProxyRequest;
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export type FaultAction =
  /** Answer with this instead of the upstream's answer. */
  | { kind: 'respond'; status: number; body?: string; headers?: Record<string, string> }
  /** Destroy the connection without answering. */
  | { kind: 'reset' }
  /** Wait, then carry on (forward, or deliver the upstream's answer): a timeout for a client that gives up sooner. */
  | { kind: 'delay'; ms: number };

export interface FaultMatch {
  method?: string;
  path?: RegExp;
  name?: string | RegExp;
  where?: (request: ProxyRequest) => boolean;
}

export interface FaultRule {
  /** Which requests; all when absent. */
  match?: FaultMatch;
  action: FaultAction;
  /** How many matching requests fail; all of them (always) when absent. */
  times?: number;
  /** Matching requests let through before the first failing one. Default 0. */
  after?: number;
  /**
   * `before` (default): the upstream never sees a failed request. `after`: forwarded first, so the work
   * is done, then the answer is replaced, delayed or the connection reset.
   */
  when?: 'before' | 'after';
}

export interface RecordedRequest {
  seq: number;
  name: string;
  method: string;
  path: string;
  /** The status the client got; undefined when the connection was reset or the client gave up. */
  status?: number;
  /** The fault applied, if any (`respond 503`, `reset`, `delay 1500`). */
  fault?: string;
  /** True when the upstream saw the request. */
  forwarded: boolean;
}

export interface InjectedFault {
  /** Requests the fault has hit so far. */
  hits(): number;
  remove(): void;
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT (https:// with `tls`) — point the client here. */
  readonly url: string;
  /** Every request so far, in arrival order. */
  readonly requests: readonly RecordedRequest[];
  /** Errors thrown by hooks (a test should expect none). */
  readonly hookErrors: readonly unknown[];
  inject(rule: FaultRule): InjectedFault;
  clearFaults(): void;
  /** Called with each upstream answer before it goes back (or is replaced). Returns an unsubscribe. */
  onExchange(hook: (exchange: ProxyExchange) => Promise<void> | void): () => void;
  /** A position in `requests`, for `since`. */
  mark(): number;
  /** Requests since `mark`. */
  since(mark: number): RecordedRequest[];
  /** Requests since `mark`, counted by name. */
  countsSince(mark: number): Record<string, number>;
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  /** Where requests go, e.g. http://127.0.0.1:5000. */
  target: string;
  /** Name a request (default `METHOD /path`): faults match it and counts use it. */
  classify?: (request: Omit<ProxyRequest, 'name'>) => string;
  /**
   * Serve HTTPS with this certificate, for clients that refuse plain http (the Azure SDK sends bearer
   * tokens over https only). The upstream is still reached over http; it is told the client's view
   * in `x-forwarded-proto` / `x-forwarded-host`, so URLs it returns lead back through the proxy.
   */
  tls?: { cert: string; key: string };
}

/** Classifier for form-encoded bodies (the AWS Query API's `Action=`): the value of `field`. */
export function formField(field: string): (request: Omit<ProxyRequest, 'name'>) => string {
  return (request) => new URLSearchParams(request.body).get(field) ?? `${request.method} ${request.path}`;
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  const classify = options.classify ?? ((r) => `${r.method} ${r.path.split('?')[0]}`);
  const requests: RecordedRequest[] = [];
  const hookErrors: unknown[] = [];
  const hooks = new Set<(exchange: ProxyExchange) => Promise<void> | void>();
  const rules: Array<{ rule: FaultRule; seen: number; hits: number }> = [];
  const sockets = new Set<Socket>();

  function pickFault(request: ProxyRequest): FaultRule | undefined {
    for (const entry of rules) {
      if (!matches(entry.rule.match, request)) continue;
      entry.seen += 1;
      const first = (entry.rule.after ?? 0) + 1;
      const last = first + (entry.rule.times ?? Number.POSITIVE_INFINITY) - 1;
      if (entry.seen >= first && entry.seen <= last) {
        entry.hits += 1;
        return entry.rule;
      }
    }
    return undefined;
  }

  const handler = async (incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const base = {
      method: incoming.method ?? 'GET',
      path: incoming.url ?? '/',
      headers: incoming.headers,
      body: raw.toString('utf8'),
    };
    const request: ProxyRequest = { ...base, name: classify(base) };
    const record: RecordedRequest = {
      seq: requests.length + 1,
      name: request.name,
      method: request.method,
      path: request.path,
      forwarded: false,
    };
    requests.push(record);
    let clientGone = false;
    outgoing.on('close', () => {
      if (!outgoing.writableFinished) clientGone = true;
    });
    const fault = pickFault(request);
    const when = fault?.when ?? 'before';
    if (fault) record.fault = describeAction(fault.action) + (when === 'after' ? ' (after upstream)' : '');

    try {
      if (fault && when === 'before') {
        if (fault.action.kind === 'delay') await delay(fault.action.ms);
        else return apply(fault.action, outgoing, record, incoming.socket);
        if (clientGone) return;
      }
      const upstream = await forward(target, request, raw, options.tls ? 'https' : undefined);
      record.forwarded = true;
      for (const hook of hooks) {
        try {
          await hook({
            request,
            status: upstream.status,
            headers: upstream.headers,
            body: upstream.raw.toString('utf8'),
          });
        } catch (error) {
          hookErrors.push(error);
        }
      }
      if (fault && when === 'after') {
        if (fault.action.kind === 'delay') await delay(fault.action.ms);
        else return apply(fault.action, outgoing, record, incoming.socket);
        if (clientGone) return;
      }
      record.status = upstream.status;
      const headers = { ...upstream.headers };
      delete headers['transfer-encoding'];
      headers['content-length'] = String(upstream.raw.length);
      outgoing.writeHead(upstream.status, headers);
      outgoing.end(upstream.raw);
    } catch (error) {
      record.status = 502;
      if (!outgoing.headersSent) outgoing.writeHead(502, { 'content-type': 'text/plain' });
      outgoing.end(`fault-proxy: upstream failed: ${(error as Error).message}`);
    }
  };
  const server: Server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler)
    : createServer(handler);
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('fault-proxy: no address');

  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${address.port}`,
    requests,
    hookErrors,
    inject(rule) {
      const entry = { rule, seen: 0, hits: 0 };
      rules.push(entry);
      return {
        hits: () => entry.hits,
        remove: () => {
          const index = rules.indexOf(entry);
          if (index >= 0) rules.splice(index, 1);
        },
      };
    },
    clearFaults() {
      rules.length = 0;
    },
    onExchange(hook) {
      hooks.add(hook);
      return () => hooks.delete(hook);
    },
    mark: () => requests.length,
    since: (mark) => requests.slice(mark),
    countsSince(mark) {
      const counts: Record<string, number> = {};
      for (const r of requests.slice(mark)) counts[r.name] = (counts[r.name] ?? 0) + 1;
      return counts;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function matches(match: FaultMatch | undefined, request: ProxyRequest): boolean {
  if (!match) return true;
  if (match.method && match.method.toUpperCase() !== request.method.toUpperCase()) return false;
  if (match.path && !match.path.test(request.path)) return false;
  if (match.name !== undefined) {
    if (typeof match.name === 'string' ? match.name !== request.name : !match.name.test(request.name))
      return false;
  }
  if (match.where && !match.where(request)) return false;
  return true;
}

function apply(
  action: Exclude<FaultAction, { kind: 'delay' }>,
  outgoing: import('node:http').ServerResponse,
  record: RecordedRequest,
  socket: Socket,
): void {
  if (action.kind === 'reset') {
    socket.destroy();
    return;
  }
  record.status = action.status;
  const body = action.body ?? '';
  outgoing.writeHead(action.status, {
    'content-type': 'text/xml',
    ...action.headers,
    'content-length': String(Buffer.byteLength(body)),
  });
  outgoing.end(body);
}

function describeAction(action: FaultAction): string {
  switch (action.kind) {
    case 'respond':
      return `respond ${action.status}`;
    case 'reset':
      return 'reset';
    case 'delay':
      return `delay ${action.ms}`;
  }
}

function forward(
  target: URL,
  request: ProxyRequest,
  raw: Buffer,
  clientProto?: 'https',
): Promise<{ status: number; headers: IncomingHttpHeaders; raw: Buffer }> {
  const forwarded = clientProto
    ? { 'x-forwarded-proto': clientProto, 'x-forwarded-host': request.headers.host ?? '' }
    : {};
  return new Promise((resolve, reject) => {
    const upstream = httpRequest(
      {
        hostname: target.hostname,
        port: target.port,
        method: request.method,
        path: request.path,
        headers: { ...request.headers, ...forwarded, host: target.host },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 502,
            headers: response.headers,
            raw: Buffer.concat(chunks),
          }),
        );
        response.on('error', reject);
      },
    );
    upstream.on('error', reject);
    upstream.end(raw);
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
