/**
 * A fake EC2 instance metadata service speaking IMDSv2 on loopback: `PUT /latest/api/token` with a TTL
 * header gives a token; metadata GETs need it (401 without, as an instance with IMDSv1 disabled does).
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

export interface FakeImdsOptions {
  instanceId: string;
  availabilityZone: string;
  region: string;
}

export interface FakeImds {
  /** http://127.0.0.1:PORT */
  url: string;
  /** `METHOD path status` of every request, in order. */
  readonly requests: readonly string[];
  close(): Promise<void>;
}

export async function startFakeImds(options: FakeImdsOptions): Promise<FakeImds> {
  const tokens = new Set<string>();
  const requests: string[] = [];
  const metadata: Record<string, string> = {
    '/latest/meta-data/instance-id': options.instanceId,
    '/latest/meta-data/placement/availability-zone': options.availabilityZone,
    '/latest/meta-data/placement/region': options.region,
  };
  const server = createServer((request, response) => {
    const answer = (status: number, body = ''): void => {
      requests.push(`${request.method} ${request.url} ${status}`);
      response.writeHead(status, { 'content-type': 'text/plain' });
      response.end(body);
    };
    if (request.method === 'PUT' && request.url === '/latest/api/token') {
      const ttl = Number(request.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (!(ttl >= 1 && ttl <= 21600)) return answer(400, 'missing or invalid token TTL');
      const token = randomBytes(24).toString('base64');
      tokens.add(token);
      return answer(200, token);
    }
    if (request.method !== 'GET') return answer(405);
    if (!tokens.has(String(request.headers['x-aws-ec2-metadata-token'] ?? ''))) return answer(401);
    const value = metadata[request.url ?? ''];
    return value === undefined ? answer(404) : answer(200, value);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('fake IMDS: no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
