/**
 * This VM as the GCE metadata server describes it: project, zone and instance name. Requests carry
 * `Metadata-Flavor: Google` and answers must too (anything else is not a metadata server).
 */
import { DssnapError } from '../../src/errors.js';

export interface VmIdentity {
  project: string;
  zone: string;
  instance: string;
}

export interface MetadataOptions {
  /** `http://metadata.google.internal` or a test server. */
  url: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** One metadata value (`project/project-id`), as text. Throws PROVIDER_ERROR with a hint when unreachable. */
export async function readMetadata(path: string, options: MetadataOptions): Promise<string> {
  const url = `${options.url}/computeMetadata/v1/${path}`;
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 10_000);
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { 'Metadata-Flavor': 'Google' },
      signal: options.signal ? AbortSignal.any([options.signal, timeout]) : timeout,
    });
  } catch (error) {
    throw unreachable(options.url, `${(error as Error).message}`, error);
  }
  if (response.headers.get('metadata-flavor') !== 'Google') {
    throw unreachable(options.url, `HTTP ${response.status} without the Metadata-Flavor: Google header`);
  }
  if (!response.ok) {
    throw unreachable(options.url, `HTTP ${response.status} for ${path}`);
  }
  return (await response.text()).trim();
}

/** Project, zone and instance name of this VM. */
export async function readVmIdentity(options: MetadataOptions): Promise<VmIdentity> {
  const [project, zonePath, instance] = await Promise.all([
    readMetadata('project/project-id', options),
    readMetadata('instance/zone', options),
    readMetadata('instance/name', options),
  ]);
  // `projects/123456789012/zones/europe-west1-b` → `europe-west1-b`.
  return { project, zone: zonePath.split('/').pop() ?? zonePath, instance };
}

function unreachable(url: string, why: string, cause?: unknown): DssnapError {
  return new DssnapError('UNSUPPORTED', `The GCE metadata server at ${url} did not answer: ${why}`, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'dssnap --provider gcp runs on a Compute Engine VM. Elsewhere, set the provider settings project, zone and instance (and metadataEndpoint or GCE_METADATA_HOST if the metadata server is elsewhere).',
    details: { url },
  });
}
