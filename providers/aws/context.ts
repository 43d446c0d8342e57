/**
 * What every part of the aws provider shares: its settings, this instance (IMDSv2, read once) and the
 * EC2 client (built once, when first needed). Nothing is contacted before a method needs it. The region
 * is the `region` setting, else the SDK's default chain (AWS_REGION, profile), else the instance's own.
 */
import { EC2Client, type Instance } from '@aws-sdk/client-ec2';
import { type CountedEc2Client, createEc2Client } from './client.js';
import { type InstanceIdentity, readInstanceIdentity } from './imds.js';
import type { ResolvedAwsSettings } from './schema.js';

export interface AwsContext {
  settings: ResolvedAwsSettings;
  signal: AbortSignal | undefined;
  /** Options for every `client.send`: the provider's abort signal. */
  sendOptions: { abortSignal?: AbortSignal };
  /** This instance; a failure is not cached (the next call asks IMDS again). */
  identity(): Promise<InstanceIdentity>;
  /** The region in use: the `region` setting, the SDK's default chain, or this instance's. */
  region(): Promise<string>;
  ec2(): Promise<EC2Client>;
  /** EC2 requests sent so far per action. */
  apiCalls(): Record<string, number>;
  /** The instance as `locate` described it, so that a multi-volume snapshot adds no call while frozen. */
  located?: { instance: Instance; at: number };
}

export function createAwsContext(settings: ResolvedAwsSettings, signal?: AbortSignal): AwsContext {
  let identityPromise: Promise<InstanceIdentity> | undefined;
  let counted: CountedEc2Client | undefined;

  function identity(): Promise<InstanceIdentity> {
    identityPromise ??= readInstanceIdentity({
      endpoint: settings.imdsEndpoint,
      ...(signal ? { signal } : {}),
    }).catch((error: unknown) => {
      identityPromise = undefined;
      throw error;
    });
    return identityPromise;
  }

  async function region(): Promise<string> {
    return settings.region ?? (await sdkDefaultRegion()) ?? (await identity()).region;
  }

  return {
    settings,
    signal,
    sendOptions: signal ? { abortSignal: signal } : {},
    identity,
    region,
    async ec2() {
      if (!counted) {
        const resolved = await region();
        counted ??= createEc2Client({
          region: resolved,
          ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
          maxAttempts: settings.maxAttempts,
          requestTimeoutMs: settings.requestTimeoutMs,
        });
      }
      return counted.client;
    },
    apiCalls: () => counted?.callCounts() ?? {},
  };
}

/** The region from the SDK's default chain (AWS_REGION, the profile's config), if it names one. */
async function sdkDefaultRegion(): Promise<string | undefined> {
  try {
    return (await new EC2Client({}).config.region()) || undefined;
  } catch {
    return undefined;
  }
}
