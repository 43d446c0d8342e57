/**
 * The aws provider's settings (config file `provider-options:`, and `--volume` flags), validated
 * strictly: an unknown key is an error listing the valid ones. No credentials here, ever: they come
 * from the SDK's default chain (instance role, environment, profile).
 */
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { duration } from '../../src/config.js';
import { parseDuration } from '../../src/duration.js';

/** `vol-0123…` (the volume holding DATA_DIR) or `vol-0123…=/mount/point` (a volume mounted there). */
export const volumeOverridePattern = /^(vol-[0-9a-f]{8,17})(?:=(\/.*))?$/;

export const settingsSchema = z.strictObject({
  /** AWS region; default: the instance's region from IMDSv2. */
  region: z.string().min(1).optional(),
  /** EC2 API endpoint (VPC endpoint, or an emulator in tests); default: the region's public one. */
  endpoint: z.url().optional(),
  /** Instance metadata service; default $AWS_EC2_METADATA_SERVICE_ENDPOINT or http://169.254.169.254. */
  imdsEndpoint: z.url().optional(),
  /** Where the by-id links of block devices live (`nvme-Amazon_Elastic_Block_Store_vol…`). */
  deviceDir: z.string().refine(isAbsolute, 'must be an absolute path').optional(),
  /** Explicit volumes, overriding detection (the `--volume` flag). */
  volumes: z
    .array(z.string().regex(volumeOverridePattern, "must be 'vol-…' or 'vol-…=/mount/point'"))
    .optional(),
  /** Type of the temporary volume made from a snapshot to read it. Default gp3. */
  volumeType: z.enum(['gp3', 'gp2', 'io1', 'io2', 'st1', 'sc1', 'standard']).optional(),
  /** Value of the `dssnap:retention-class` tag put on retained snapshots (e.g. pre-upgrade, daily). */
  retentionClass: z
    .string()
    .regex(/^[A-Za-z0-9 _.:/=+@-]{1,128}$/, 'must be 1-128 letters, digits or _.:/=+@- (an EC2 tag value)')
    .optional(),
  /** SDK attempts per API call (throttling and transient errors), the first included. Default 5. */
  maxAttempts: z.number().int().min(1).max(20).optional(),
  /** Time allowed for one HTTP request to EC2. Default 30s. */
  requestTimeout: duration.optional(),
  /** First delay of the provider's own polls (volume state, attachment, device). Default 1s. */
  pollInterval: duration.optional(),
  /** Longest wait for a temporary volume to be created, attached or detached. Default 15m. */
  volumeTimeout: duration.optional(),
});

export type AwsSettings = z.infer<typeof settingsSchema>;

/** The settings with every default applied and durations in milliseconds. */
export interface ResolvedAwsSettings {
  region?: string;
  endpoint?: string;
  imdsEndpoint: string;
  deviceDir: string;
  volumes: VolumeOverride[];
  volumeType: NonNullable<AwsSettings['volumeType']>;
  retentionClass?: string;
  maxAttempts: number;
  requestTimeoutMs: number;
  pollIntervalMs: number;
  volumeTimeoutMs: number;
}

export interface VolumeOverride {
  volumeId: string;
  /** Where the volume is mounted; undefined for the volume holding DATA_DIR itself. */
  mountPoint?: string;
}

export const defaultImdsEndpoint = 'http://169.254.169.254';
export const defaultDeviceDir = '/dev/disk/by-id';

/** Apply defaults. `env` supplies AWS_EC2_METADATA_SERVICE_ENDPOINT, the SDK's own variable. */
export function resolveSettings(
  settings: AwsSettings,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedAwsSettings {
  return {
    ...(settings.region ? { region: settings.region } : {}),
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    imdsEndpoint: (
      settings.imdsEndpoint ??
      env.AWS_EC2_METADATA_SERVICE_ENDPOINT ??
      defaultImdsEndpoint
    ).replace(/\/+$/, ''),
    deviceDir: settings.deviceDir ?? defaultDeviceDir,
    volumes: (settings.volumes ?? []).map(parseVolumeOverride),
    volumeType: settings.volumeType ?? 'gp3',
    ...(settings.retentionClass ? { retentionClass: settings.retentionClass } : {}),
    maxAttempts: settings.maxAttempts ?? 5,
    requestTimeoutMs: parseDuration(settings.requestTimeout ?? '30s', 'requestTimeout'),
    pollIntervalMs: Math.max(1, parseDuration(settings.pollInterval ?? '1s', 'pollInterval')),
    volumeTimeoutMs: parseDuration(settings.volumeTimeout ?? '15m', 'volumeTimeout'),
  };
}

function parseVolumeOverride(text: string): VolumeOverride {
  const match = volumeOverridePattern.exec(text)!;
  return match[2]
    ? { volumeId: match[1]!, mountPoint: match[2].replace(/\/+$/, '') || '/' }
    : { volumeId: match[1]! };
}
