/**
 * The EC2 client: the real `@aws-sdk/client-ec2`, configured once. Credentials come from the SDK's
 * default chain (never from dssnap's settings, never logged). Every call goes through two middlewares:
 * one counts HTTP attempts per action (`callCounts`), the other turns SDK errors into AwsApiError.
 * Retries inside the SDK follow the provider's classification: throttling is retried for every call
 * (nothing was started), transient errors only for calls that are safe to repeat.
 */
import { EC2Client, type EC2ClientConfig } from '@aws-sdk/client-ec2';
import { backoffDelay } from '../../src/provider/wait.js';
import { AwsApiError, classifyAwsError } from './errors.js';

type RetryStrategyV2 = Extract<
  NonNullable<EC2ClientConfig['retryStrategy']>,
  { acquireInitialRetryToken: unknown }
>;
type RetryToken = Awaited<ReturnType<RetryStrategyV2['acquireInitialRetryToken']>>;

/**
 * Calls that create something or change an attachment: repeating one after an ambiguous failure (a
 * timeout after EC2 accepted it) could create a second, untracked resource, so the SDK repeats them only
 * after throttling. The provider recovers from their failures itself (find by tag, check the state).
 */
export const nonIdempotentActions: ReadonlySet<string> = new Set([
  'CreateSnapshot',
  'CreateSnapshots',
  'CreateVolume',
  'AttachVolume',
  'DetachVolume',
]);

export interface Ec2ClientOptions {
  region: string;
  endpoint?: string;
  maxAttempts: number;
  requestTimeoutMs: number;
  /** First retry delay inside the SDK. Default 250 ms, doubling, jittered. */
  retryMinDelayMs?: number;
}

export interface CountedEc2Client {
  client: EC2Client;
  /** HTTP requests sent so far per EC2 action (retries included: that is what EC2 throttles). */
  callCounts(): Record<string, number>;
}

/** Build the client. Changes nothing and calls nothing until a command is sent. */
export function createEc2Client(options: Ec2ClientOptions): CountedEc2Client {
  const counts: Record<string, number> = {};
  const client = new EC2Client({
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    maxAttempts: options.maxAttempts,
    retryStrategy: retryStrategy(options.maxAttempts, options.retryMinDelayMs ?? 250),
    // throwOnRequestTimeout: without it the SDK only warns and keeps waiting on a request that hangs.
    requestHandler: {
      requestTimeout: options.requestTimeoutMs,
      connectionTimeout: Math.min(options.requestTimeoutMs, 10_000),
      throwOnRequestTimeout: true,
    },
  });
  // Outermost: whatever failed (after the SDK's retries), the caller gets an AwsApiError naming the action.
  client.middlewareStack.add(
    (next, context) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        throw new AwsApiError(actionOf(context.commandName), error);
      }
    },
    { step: 'initialize', priority: 'high', name: 'dssnapAwsErrors' },
  );
  // Inside the retry loop: one count per HTTP attempt, and the action on the error for the retry decision.
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const action = actionOf(context.commandName);
      counts[action] = (counts[action] ?? 0) + 1;
      try {
        return await next(args);
      } catch (error) {
        if (error && typeof error === 'object') (error as { $dssnapAction?: string }).$dssnapAction = action;
        throw error;
      }
    },
    { step: 'finalizeRequest', priority: 'low', name: 'dssnapAwsCallCounter' },
  );
  return { client, callCounts: () => ({ ...counts }) };
}

function actionOf(commandName: string | undefined): string {
  return (commandName ?? 'Unknown').replace(/Command$/, '');
}

/** True when the SDK may send the same request again after `error`. */
export function sdkShouldRetry(error: unknown): boolean {
  const kind = classifyAwsError(error);
  if (kind === 'throttling') return true;
  if (kind !== 'transient') return false;
  const action = (error as { $dssnapAction?: string } | undefined)?.$dssnapAction ?? '';
  return !nonIdempotentActions.has(action);
}

/** A RetryStrategyV2 driven by `sdkShouldRetry`, with the core's jittered backoff. */
function retryStrategy(maxAttempts: number, minDelayMs: number): RetryStrategyV2 {
  const token = (count: number, delay: number): RetryToken => ({
    getRetryCount: () => count,
    getRetryDelay: () => delay,
  });
  return {
    acquireInitialRetryToken: async () => token(0, 0),
    refreshRetryTokenForRetry: async (previous, info) => {
      const retries = previous.getRetryCount() + 1;
      if (retries >= maxAttempts || !sdkShouldRetry(info.error)) throw info.error;
      const delay = backoffDelay({ attempt: retries, minDelayMs, maxDelayMs: 20_000 });
      const hinted = info.retryAfterHint ? info.retryAfterHint.getTime() - Date.now() : 0;
      return token(retries, Math.max(delay, Math.min(hinted, 20_000)));
    },
    recordSuccess: () => undefined,
  };
}
