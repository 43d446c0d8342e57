/**
 * Compute Engine errors, classified once (STYLE.md habit 4). The SDK (REST transport) throws the HTTP
 * error with Google's JSON body (`{"error":{"code":403,"message":"Required 'compute.disks.createSnapshot'
 * permission for …","errors":[{"reason":"forbidden"}]}}`) and retries nothing itself; a failed operation
 * comes back DONE with `error.errors[{code, message}]`. Both become a GcpApiError that names the call,
 * says what to do, and tells the core's retry decorator whether trying again can help.
 */
import { DssnapError, isDssnapError } from '../../src/errors.js';
import { networkErrorCodes } from '../../src/provider/network-errors.js';

/** What can be done about an error: wait and retry, nothing (already gone), or fix something first. */
export type GcpErrorKind = 'throttling' | 'transient' | 'not-found' | 'denied' | 'credentials' | 'permanent';

/** Google error reasons that mean "slow down" (429, or the 403 Compute still uses for rate limits). */
const throttlingReasons: ReadonlySet<string> = new Set([
  'rateLimitExceeded',
  'userRateLimitExceeded',
  'RATE_LIMIT_EXCEEDED',
  'RESOURCE_OPERATION_RATE_EXCEEDED',
  'OPERATION_RATE_EXCEEDED',
]);

/** Reasons of a state that passes: a resource still being created or detached, a server hiccup. */
const transientReasons: ReadonlySet<string> = new Set([
  'backendError',
  'internalError',
  'resourceNotReady',
  'RESOURCE_NOT_READY',
  'resourceInUseByAnotherResource',
  'RESOURCE_IN_USE_BY_ANOTHER_RESOURCE',
  'conditionNotMet',
  'INTERNAL_ERROR',
  'SERVICE_UNAVAILABLE',
]);

const notFoundReasons: ReadonlySet<string> = new Set(['notFound', 'RESOURCE_NOT_FOUND']);

/** What a Google API error says, whatever layer threw it. */
export interface GoogleErrorInfo {
  /** HTTP status; undefined for network errors. */
  status?: number;
  message: string;
  reasons: string[];
  /** Node's error code for network failures (ECONNRESET…). */
  networkCode?: string;
}

/** A classified Compute Engine failure; `method` names the call (`disks.createSnapshot`). */
export class GcpApiError extends DssnapError {
  readonly kind: GcpErrorKind;
  readonly method: string;
  readonly status: number | undefined;
  readonly reasons: readonly string[];
  /** The IAM permission a 403 names, when it names one. */
  readonly permission: string | undefined;

  constructor(method: string, info: GoogleErrorInfo, cause?: unknown) {
    const kind = classify(info);
    const permission = /Required '([\w.]+)' permission/.exec(info.message)?.[1];
    super(kind === 'not-found' ? 'NOT_FOUND' : 'PROVIDER_ERROR', messageFor(method, kind, info, permission), {
      cause,
      hint: hintFor(kind, permission),
      details: { method, status: info.status, reasons: info.reasons, ...(permission ? { permission } : {}) },
    });
    this.name = 'GcpApiError';
    this.kind = kind;
    this.method = method;
    this.status = info.status;
    this.reasons = info.reasons;
    this.permission = permission;
  }
}

/** Wrap whatever a Compute call threw; a GcpApiError or another DssnapError passes unchanged. */
export function toGcpError(method: string, error: unknown): DssnapError {
  if (isDssnapError(error)) return error;
  return new GcpApiError(method, googleErrorOf(error), error);
}

/** The error of an operation that ended DONE with `error.errors`. */
export function operationError(
  method: string,
  errors: ReadonlyArray<{ code?: string | null; message?: string | null }>,
  httpStatus?: number | null,
): GcpApiError {
  const message =
    errors.map((e) => `${e.code ?? 'ERROR'}: ${e.message ?? ''}`.trim()).join('; ') || 'the operation failed';
  return new GcpApiError(
    method,
    {
      ...(httpStatus ? { status: httpStatus } : {}),
      message,
      reasons: errors.map((e) => e.code ?? '').filter(Boolean),
    },
    undefined,
  );
}

/** Read status, message and reasons from an SDK (gaxios) error, a Google JSON body or a network error. */
export function googleErrorOf(error: unknown): GoogleErrorInfo {
  const shape = (error ?? {}) as {
    code?: unknown;
    status?: unknown;
    message?: unknown;
    response?: { status?: number; data?: unknown };
    errors?: unknown;
  };
  const networkCode =
    typeof shape.code === 'string' && networkErrorCodes.has(shape.code) ? shape.code : undefined;
  const text = typeof shape.message === 'string' ? shape.message : String(error);
  const body = parseBody(shape.response?.data) ?? parseBody(text);
  const status =
    body?.code ??
    (typeof shape.code === 'number' ? shape.code : undefined) ??
    (typeof shape.status === 'number' ? shape.status : undefined) ??
    shape.response?.status;
  return {
    ...(status === undefined ? {} : { status }),
    message: body?.message ?? text,
    reasons: body?.reasons ?? [],
    ...(networkCode ? { networkCode } : {}),
  };
}

/** The kind of a Compute error (or of anything thrown near one). */
export function classifyGcpError(error: unknown): GcpErrorKind {
  if (error instanceof GcpApiError) return error.kind;
  if (isDssnapError(error)) return error.code === 'NOT_FOUND' ? 'not-found' : 'permanent';
  return classify(googleErrorOf(error));
}

/** True when the error means "that resource does not exist". */
export function isGcpNotFound(error: unknown): boolean {
  return classifyGcpError(error) === 'not-found';
}

/** True when retrying cannot help: denied, bad credentials, invalid, failed for good. */
export function isGcpPermanent(error: unknown): boolean {
  const kind = classifyGcpError(error);
  return kind !== 'throttling' && kind !== 'transient';
}

function classify(info: GoogleErrorInfo): GcpErrorKind {
  if (info.networkCode) return 'transient';
  if (info.reasons.some((r) => throttlingReasons.has(r)) || info.status === 429) return 'throttling';
  if (info.reasons.some((r) => notFoundReasons.has(r)) || info.status === 404) return 'not-found';
  if (info.status === 401) return 'credentials';
  // google-auth-library found no Application Default Credentials, or could not get a token.
  if (
    info.status === undefined &&
    /default credentials|refresh access token|invalid_grant/i.test(info.message)
  ) {
    return 'credentials';
  }
  if (info.status === 403) return 'denied';
  if (info.reasons.some((r) => transientReasons.has(r))) return 'transient';
  if (info.status !== undefined && (info.status >= 500 || info.status === 408)) return 'transient';
  if (info.status === undefined && /timeout|timed out|socket hang up|network/i.test(info.message))
    return 'transient';
  return 'permanent';
}

function messageFor(
  method: string,
  kind: GcpErrorKind,
  info: GoogleErrorInfo,
  permission: string | undefined,
): string {
  const status = info.status === undefined ? (info.networkCode ?? 'network error') : `HTTP ${info.status}`;
  if (kind === 'denied' && permission) {
    return `GCP denied ${method}: the credentials lack the IAM permission ${permission} (${info.message})`;
  }
  return `GCP ${method} failed (${status}${info.reasons.length > 0 ? ` ${info.reasons.join(',')}` : ''}): ${info.message}`;
}

function hintFor(kind: GcpErrorKind, permission: string | undefined): string | undefined {
  switch (kind) {
    case 'denied':
      return `Grant ${permission ?? 'the missing permission'} to the VM's service account (see the gcp provider's permission list; 'dssnap doctor --provider gcp' checks them all).`;
    case 'credentials':
      return "Check Application Default Credentials: the VM's service account and its access scopes (cloud-platform or compute), or GOOGLE_APPLICATION_CREDENTIALS.";
    case 'throttling':
      return 'Compute Engine is rate-limiting this project: retry later, or raise the quota.';
    default:
      return undefined;
  }
}

function parseBody(data: unknown): { code?: number; message?: string; reasons: string[] } | undefined {
  let parsed = data;
  if (typeof data === 'string') {
    if (!data.trimStart().startsWith('{')) return undefined;
    try {
      parsed = JSON.parse(data);
    } catch {
      return undefined;
    }
  }
  const error = (parsed as { error?: unknown } | undefined)?.error;
  if (!error || typeof error !== 'object') return undefined;
  const { code, message, errors } = error as { code?: unknown; message?: unknown; errors?: unknown };
  const reasons = Array.isArray(errors)
    ? errors.map((e) => (e as { reason?: unknown }).reason).filter((r): r is string => typeof r === 'string')
    : [];
  return {
    ...(typeof code === 'number' ? { code } : {}),
    ...(typeof message === 'string' ? { message } : {}),
    reasons,
  };
}
