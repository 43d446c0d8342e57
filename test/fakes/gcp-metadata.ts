/**
 * A fake GCE metadata server (http://metadata.google.internal/computeMetadata/v1/): what a VM learns
 * about itself — project, zone, instance name — and the access token of its service account, which
 * Google's Application Default Credentials fetch when `GCE_METADATA_HOST` points here. Like the real
 * one it answers only requests carrying `Metadata-Flavor: Google` (403 otherwise), refuses proxied
 * requests (`X-Forwarded-For`), and marks its answers with `Metadata-Flavor: Google`.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GcpMetadataOptions {
  project: string;
  /** Numeric project, as the `instance/zone` path carries it. */
  projectNumber?: string;
  zone: string;
  instance: string;
  instanceId?: string;
  serviceAccount?: string;
  /** Seconds a token lives (Google: ~3600). */
  tokenLifetimeS?: number;
}

export interface GcpMetadataFake {
  /** `127.0.0.1:PORT`: the value for `GCE_METADATA_HOST`. */
  host: string;
  url: string;
  /** Every token handed out, so the API fake accepts exactly these. */
  readonly tokens: ReadonlySet<string>;
  /** Paths requested (with their query), in order. */
  readonly requests: readonly string[];
  /** When true, every request fails with 503 (a metadata server that is down). */
  down: boolean;
  close(): Promise<void>;
}

/** Start the fake on a free loopback port. */
export async function startGcpMetadataFake(options: GcpMetadataOptions): Promise<GcpMetadataFake> {
  const tokens = new Set<string>();
  const requests: string[] = [];
  const projectNumber = options.projectNumber ?? '123456789012';
  const email = options.serviceAccount ?? `${projectNumber}-compute@developer.gserviceaccount.com`;
  const values: Record<string, string> = {
    'project/project-id': options.project,
    'project/numeric-project-id': projectNumber,
    'instance/zone': `projects/${projectNumber}/zones/${options.zone}`,
    'instance/name': options.instance,
    'instance/hostname': `${options.instance}.${options.zone}.c.${options.project}.internal`,
    'instance/id': options.instanceId ?? '4520031799277581759',
    'instance/service-accounts/default/email': email,
    'instance/service-accounts/default/scopes': 'https://www.googleapis.com/auth/cloud-platform',
    'universe/universe-domain': 'googleapis.com',
  };
  const fake: GcpMetadataFake = {
    host: '',
    url: '',
    tokens,
    requests,
    down: false,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };

  function answer(req: IncomingMessage, res: ServerResponse): void {
    res.setHeader('Metadata-Flavor', 'Google');
    res.setHeader('Server', 'Metadata Server for VM');
    const [status, type, body] = respond(req);
    res.statusCode = status;
    res.setHeader('Content-Type', type);
    res.end(body);
  }

  /** Status, content type and body for one request. */
  function respond(req: IncomingMessage): [number, string, string] {
    const url = new URL(req.url ?? '/', 'http://metadata');
    requests.push(url.pathname + url.search);
    if (fake.down) return [503, 'text/plain', 'Service Unavailable'];
    if (req.headers['metadata-flavor'] !== 'Google' || req.headers['x-forwarded-for']) {
      return [403, 'text/html', 'Missing Metadata-Flavor:Google header.'];
    }
    const path = url.pathname.replace(/^\/computeMetadata\/v1\/?/, '').replace(/\/$/, '');
    if (path === 'instance' || path === '') return [200, 'application/text', 'attributes/\nid\nname\nzone\n'];
    if (path === 'instance/service-accounts/default/token') {
      const token = `ya29.fake-${randomBytes(12).toString('hex')}`;
      tokens.add(token);
      return [
        200,
        'application/json',
        JSON.stringify({
          access_token: token,
          expires_in: options.tokenLifetimeS ?? 3599,
          token_type: 'Bearer',
        }),
      ];
    }
    const value = values[path];
    if (value === undefined) return [404, 'text/html', 'Not Found'];
    return [200, 'application/text', value];
  }

  const server: Server = createServer(answer);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  fake.host = `127.0.0.1:${port}`;
  fake.url = `http://${fake.host}`;
  return fake;
}
