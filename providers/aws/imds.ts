/**
 * IMDSv2: which instance this is, and where. A session token first (PUT), then the metadata with the
 * token; IMDSv1 (no token) is never used. The token is a secret: it is never logged or returned.
 */
import { DssnapError } from '../../src/errors.js';
import { sleep } from '../../src/provider/wait.js';

export interface InstanceIdentity {
  instanceId: string;
  availabilityZone: string;
  region: string;
}

export interface ImdsOptions {
  /** Base URL, e.g. http://169.254.169.254. */
  endpoint: string;
  /** Per request. Default 2000 ms (IMDS answers in milliseconds when reachable). */
  timeoutMs?: number;
  /** Tries per request (IMDS throttles bursts). Default 3. */
  attempts?: number;
  signal?: AbortSignal;
}

/**
 * Read the instance id, availability zone and region. Returns when all three are known; throws
 * PROVIDER_ERROR (with a hint) when IMDSv2 cannot be reached or answers without them.
 */
export async function readInstanceIdentity(options: ImdsOptions): Promise<InstanceIdentity> {
  const token = await imdsRequest(options, 'PUT', '/latest/api/token', {
    'X-aws-ec2-metadata-token-ttl-seconds': '21600',
  });
  const get = (path: string) =>
    imdsRequest(options, 'GET', `/latest/meta-data/${path}`, { 'X-aws-ec2-metadata-token': token });
  const instanceId = await get('instance-id');
  const availabilityZone = await get('placement/availability-zone');
  // placement/region exists on every current instance; older ones only give the zone ("us-east-1a").
  const region = await get('placement/region').catch(() => availabilityZone.replace(/[a-z]$/, ''));
  if (!/^i-[0-9a-f]+$/.test(instanceId)) {
    throw new DssnapError(
      'PROVIDER_ERROR',
      `IMDSv2 at ${options.endpoint} gave an invalid instance id '${instanceId}'`,
      {
        details: { endpoint: options.endpoint },
      },
    );
  }
  return { instanceId, availabilityZone, region };
}

async function imdsRequest(
  options: ImdsOptions,
  method: 'GET' | 'PUT',
  path: string,
  headers: Record<string, string>,
): Promise<string> {
  const attempts = options.attempts ?? 3;
  const url = `${options.endpoint}${path}`;
  let lastProblem = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const signals = [
      AbortSignal.timeout(options.timeoutMs ?? 2000),
      ...(options.signal ? [options.signal] : []),
    ];
    try {
      const response = await fetch(url, { method, headers, signal: AbortSignal.any(signals) });
      const text = (await response.text()).trim();
      if (response.ok && text !== '') return text;
      lastProblem = `HTTP ${response.status}`;
      // 401: token missing or expired, 403: IMDS disabled for this instance, 404: not on this instance.
      if (response.status >= 400 && response.status < 500 && response.status !== 429) break;
    } catch (error) {
      if (options.signal?.aborted) throw error;
      lastProblem = (error as Error).cause
        ? String(((error as Error).cause as Error).message ?? (error as Error).cause)
        : (error as Error).message;
    }
    if (attempt < attempts) await sleep(100 * 2 ** attempt, options.signal, 'an IMDS retry');
  }
  throw new DssnapError(
    'PROVIDER_ERROR',
    `Cannot read ${path} from the EC2 instance metadata service (IMDSv2) at ${options.endpoint}: ${lastProblem}`,
    {
      hint: 'dssnap --provider aws must run on the EC2 instance that holds DATA_DIR, with IMDSv2 enabled (aws ec2 modify-instance-metadata-options --http-endpoint enabled). In a container, the metadata hop limit must be at least 2 (--http-put-response-hop-limit 2).',
      details: { endpoint: options.endpoint, path, problem: lastProblem, retryable: true },
    },
  );
}
