import { describe, expect, it } from 'vitest';
import { DssnapError } from '../../src/errors.js';
import {
  classifyGcpError,
  GcpApiError,
  type GcpErrorKind,
  isGcpNotFound,
  isGcpPermanent,
  operationError,
  toGcpError,
} from './errors.js';

/** What the SDK's REST transport throws: the HTTP status as `code`, Google's JSON body as the message. */
function sdkError(status: number, reason: string, message: string): Error {
  return Object.assign(
    new Error(
      JSON.stringify({ error: { code: status, message, errors: [{ message, domain: 'global', reason }] } }),
    ),
    { code: status },
  );
}

function networkError(code: string): Error {
  return Object.assign(new Error(`request to http://127.0.0.1/ failed, reason: socket hang up`), { code });
}

describe('GCP error classification', () => {
  it.each<[string, unknown, GcpErrorKind, boolean]>([
    [
      '404 notFound',
      sdkError(404, 'notFound', "The resource 'projects/p/global/snapshots/s' was not found"),
      'not-found',
      true,
    ],
    ['429 rateLimitExceeded', sdkError(429, 'rateLimitExceeded', 'Rate Limit Exceeded'), 'throttling', false],
    [
      '403 rateLimitExceeded (Compute’s own)',
      sdkError(403, 'rateLimitExceeded', "Quota exceeded for quota metric 'Queries'"),
      'throttling',
      false,
    ],
    [
      '503 backendError',
      sdkError(503, 'backendError', 'The service is currently unavailable.'),
      'transient',
      false,
    ],
    ['500 backendError', sdkError(500, 'backendError', 'Internal error'), 'transient', false],
    [
      '400 resourceNotReady',
      sdkError(400, 'resourceNotReady', "The resource 'x' is not ready"),
      'transient',
      false,
    ],
    [
      '412 conditionNotMet (label fingerprint)',
      sdkError(412, 'conditionNotMet', 'Labels fingerprint either invalid or resource labels have changed'),
      'transient',
      false,
    ],
    [
      '403 forbidden',
      sdkError(
        403,
        'forbidden',
        "Required 'compute.disks.createSnapshot' permission for 'projects/p/zones/z/disks/d'",
      ),
      'denied',
      true,
    ],
    [
      '401 authError',
      sdkError(401, 'authError', 'Request had invalid authentication credentials.'),
      'credentials',
      true,
    ],
    ['400 invalid', sdkError(400, 'invalid', "Invalid value for field 'resource.name'"), 'permanent', true],
    ['ECONNRESET', networkError('ECONNRESET'), 'transient', false],
    ['ECONNREFUSED', networkError('ECONNREFUSED'), 'transient', false],
    ['a DssnapError NOT_FOUND', new DssnapError('NOT_FOUND', 'gone'), 'not-found', true],
    ['any other DssnapError', new DssnapError('UNSUPPORTED', 'no'), 'permanent', true],
  ])('%s is %s (permanent: %s)', (_what, error, kind, permanent) => {
    const classified = classifyGcpError(error);

    expect(classified).toBe(kind);
    expect(isGcpPermanent(error)).toBe(permanent);
    expect(isGcpNotFound(error)).toBe(kind === 'not-found');
    expect(classifyGcpError(toGcpError('disks.get', error))).toBe(kind);
  });

  it('a 403 names the missing permission, with a hint', () => {
    const error = toGcpError(
      'disks.createSnapshot',
      sdkError(
        403,
        'forbidden',
        "Required 'compute.disks.createSnapshot' permission for 'projects/p/zones/z/disks/d'",
      ),
    ) as GcpApiError;

    expect(error).toBeInstanceOf(GcpApiError);
    expect(error.permission).toBe('compute.disks.createSnapshot');
    expect(error.message).toMatch(
      /^GCP denied disks\.createSnapshot: the credentials lack the IAM permission compute\.disks\.createSnapshot/,
    );
    expect(error.hint).toContain('dssnap doctor --provider gcp');
  });

  it('other errors name the call, the status, the reason and Google’s message', () => {
    const error = toGcpError(
      'snapshots.get',
      sdkError(503, 'backendError', 'The service is currently unavailable.'),
    );

    expect(error.message).toBe(
      'GCP snapshots.get failed (HTTP 503 backendError): The service is currently unavailable.',
    );
  });

  it.each<[string, GcpErrorKind]>([
    ['RESOURCE_NOT_FOUND', 'not-found'],
    ['RESOURCE_NOT_READY', 'transient'],
    ['RESOURCE_OPERATION_RATE_EXCEEDED', 'throttling'],
    ['QUOTA_EXCEEDED', 'permanent'],
    ['ZONE_RESOURCE_POOL_EXHAUSTED', 'permanent'],
  ])('an operation that ended with %s is %s, its message surfaced', (code, kind) => {
    const error = operationError('instances.attachDisk', [{ code, message: `the ${code} message` }], 400);

    expect(error.kind).toBe(kind);
    expect(error.message).toContain(`${code}: the ${code} message`);
  });
});
