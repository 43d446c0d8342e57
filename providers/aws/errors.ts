/**
 * EC2 errors, classified once (STYLE.md habit 4): every SDK error becomes an AwsApiError that names
 * the EC2 action and says whether retrying can help. The SDK's own retries (throttling for every call,
 * transient errors for idempotent calls) and the core's `withRetries` both read this classification.
 */
import { DssnapError, isDssnapError } from '../../src/errors.js';
import { networkErrorCodes } from '../../src/provider/network-errors.js';

/** What can be done about an error: wait and retry, nothing (already gone), or fix something first. */
export type AwsErrorKind = 'throttling' | 'transient' | 'not-found' | 'denied' | 'credentials' | 'permanent';

/** Codes that mean "slow down": nothing was started, so any call may be retried after a backoff. */
export const throttlingCodes: ReadonlySet<string> = new Set([
  'RequestLimitExceeded',
  'SnapshotCreationPerVolumeRateExceeded',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'EC2ThrottledException',
  'PriorRequestNotComplete',
  'BandwidthLimitExceeded',
  'SlowDown',
]);

/** Codes of a state that passes: a detach still in progress, a volume not yet released, a server hiccup. */
const transientCodes: ReadonlySet<string> = new Set([
  'IncorrectState',
  'VolumeInUse',
  'InternalError',
  'InternalFailure',
  'ServiceUnavailable',
  'Unavailable',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
]);

/** "That resource does not exist": success for a delete, NOT_FOUND for everything else. */
const notFoundCodes: ReadonlySet<string> = new Set([
  'InvalidSnapshot.NotFound',
  'InvalidVolume.NotFound',
  'InvalidAttachment.NotFound',
]);

const deniedCodes: ReadonlySet<string> = new Set([
  'UnauthorizedOperation',
  'AccessDenied',
  'AccessDeniedException',
  'Forbidden',
]);

const credentialCodes: ReadonlySet<string> = new Set([
  'AuthFailure',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'RequestExpired',
  'CredentialsProviderError',
  'OptInRequired',
]);

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; requestId?: string; attempts?: number };
}

/** The EC2 error code of a raw SDK error (its `name`), or a Node network code. */
export function errorCode(error: unknown): string {
  const shaped = (error ?? {}) as SdkErrorShape;
  if (shaped.code && networkErrorCodes.has(shaped.code)) return shaped.code;
  return shaped.name ?? 'Error';
}

/** Classify a raw SDK error (or an AwsApiError). */
export function classifyAwsError(error: unknown): AwsErrorKind {
  if (error instanceof AwsApiError) return error.kind;
  const code = errorCode(error);
  if (throttlingCodes.has(code)) return 'throttling';
  if (notFoundCodes.has(code)) return 'not-found';
  if (deniedCodes.has(code)) return 'denied';
  if (credentialCodes.has(code)) return 'credentials';
  if (transientCodes.has(code) || networkErrorCodes.has(code)) return 'transient';
  const status = (error as SdkErrorShape)?.$metadata?.httpStatusCode;
  if (status === 429) return 'throttling';
  if (status !== undefined && status >= 500) return 'transient';
  // No HTTP status at all: the request never got an answer (socket hang up, DNS, abort of a timeout).
  if (
    status === undefined &&
    /socket hang up|timed? ?out|network|ECONN/i.test(String((error as Error)?.message))
  )
    return 'transient';
  return 'permanent';
}

/** An EC2 call that failed: the action, the AWS error code and whether retrying can help. */
export class AwsApiError extends DssnapError {
  readonly action: string;
  readonly awsCode: string;
  readonly kind: AwsErrorKind;
  readonly httpStatus: number | undefined;

  constructor(action: string, cause: unknown) {
    const kind = classifyAwsError(cause);
    const code = errorCode(cause);
    const shaped = (cause ?? {}) as SdkErrorShape;
    const raw = (shaped.message ?? '').trim();
    const detail = raw && raw !== 'UnknownError' && raw !== code ? `: ${firstSentence(raw)}` : '';
    const { message, hint } = describe(kind, action, code, detail);
    super(kind === 'not-found' ? 'NOT_FOUND' : 'PROVIDER_ERROR', message, {
      cause,
      ...(hint ? { hint } : {}),
      details: {
        provider: 'aws',
        action: `ec2:${action}`,
        awsCode: code,
        kind,
        httpStatus: shaped.$metadata?.httpStatusCode,
        requestId: shaped.$metadata?.requestId,
        attempts: shaped.$metadata?.attempts,
      },
    });
    this.name = 'AwsApiError';
    this.action = action;
    this.awsCode = code;
    this.kind = kind;
    this.httpStatus = shaped.$metadata?.httpStatusCode;
  }
}

function describe(
  kind: AwsErrorKind,
  action: string,
  code: string,
  detail: string,
): { message: string; hint?: string } {
  switch (kind) {
    case 'denied':
      return {
        message: `AWS denied ec2:${action} (${code}): the credentials in use lack the IAM permission ec2:${action}`,
        hint: `Allow ec2:${action} in the policy of the instance role (the full list: 'dssnap doctor --provider aws', or providers/aws/readme.md). A policy that limits it with ec2:ResourceTag or ec2:CreateAction conditions must match the dssnap:* tags.`,
      };
    case 'credentials':
      return {
        message: `AWS rejected the credentials for ec2:${action} (${code})${detail}`,
        hint: 'dssnap uses the AWS SDK default credential chain: attach an instance role (instance profile) to this EC2 instance, or set AWS_PROFILE / AWS_ACCESS_KEY_ID for the root user running dssnap; check the clock too (signatures expire).',
      };
    case 'throttling':
      return {
        message: `EC2 throttled ec2:${action} (${code}) and the retries ran out`,
        hint: 'Too many EC2 API calls in this account and region: run again later, or spread scheduled backups of several hosts apart.',
      };
    case 'transient':
      return { message: `EC2 call ec2:${action} failed (${code})${detail}; retrying may help` };
    case 'not-found':
      return { message: `EC2 call ec2:${action}: ${code}${detail}` };
    case 'permanent':
      return { message: `EC2 call ec2:${action} failed (${code})${detail}` };
  }
}

function firstSentence(text: string): string {
  // AWS appends a long "Encoded authorization failure message" to denials: keep the readable part.
  const cut = text.split(/ Encoded authorization failure message:/)[0]!;
  return cut.length > 300 ? `${cut.slice(0, 300)}…` : cut;
}

/** True when the error (any layer) means "that snapshot / volume / attachment does not exist". */
export function isAwsNotFound(error: unknown): boolean {
  if (error instanceof AwsApiError) return error.kind === 'not-found';
  return isDssnapError(error) && error.code === 'NOT_FOUND';
}

/** True when retrying cannot help. Only throttling and transient EC2 errors are worth another try. */
export function isAwsPermanent(error: unknown): boolean {
  if (error instanceof AwsApiError) return !(error.kind === 'throttling' || error.kind === 'transient');
  if (isDssnapError(error)) return error.details.retryable !== true;
  return true;
}
