/**
 * The gcp provider's settings (config file `provider-options:`), validated strictly: an unknown key is
 * an error listing the valid ones. No credentials here, ever: they come from Google's Application
 * Default Credentials (the VM's service account through the metadata server, or
 * GOOGLE_APPLICATION_CREDENTIALS).
 */
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { duration } from '../../src/config.js';
import { parseDuration } from '../../src/duration.js';

/** A Compute Engine resource name (RFC 1035): what disks, snapshots and device names must match. */
export const resourceNamePattern = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** `disk-name` (the disk holding DATA_DIR) or `disk-name=/mount/point` (a disk mounted there). */
export const diskOverridePattern = /^([a-z]([-a-z0-9]{0,61}[a-z0-9])?)(?:=(\/.*))?$/;

const name = z
  .string()
  .regex(resourceNamePattern, 'must be a Compute Engine name ([a-z][-a-z0-9]*, at most 63)');

export const settingsSchema = z.strictObject({
  /** Project id; default: the VM's, from the metadata server. */
  project: z
    .string()
    .regex(/^[a-z][-a-z0-9.:]{4,61}[a-z0-9]$/, 'must be a project id')
    .optional(),
  /** Zone of this VM; default: from the metadata server. */
  zone: z
    .string()
    .regex(/^[a-z]+-[a-z]+\d+-[a-z]$/, 'must be a zone like europe-west1-b')
    .optional(),
  /** Name of this VM; default: from the metadata server. */
  instance: name.optional(),
  /** Explicit disks, overriding detection from /dev/disk/by-id/google-*: `name` or `name=/mount/point`. */
  disks: z
    .array(z.string().regex(diskOverridePattern, "must be 'disk-name' or 'disk-name=/mount/point'"))
    .optional(),
  /** Where snapshots are stored (a multi-region like `eu` or a region); default: Google's nearest. */
  snapshotLocation: z
    .string()
    .regex(/^[a-z][a-z0-9-]*$/, 'must be a region or multi-region name (eu, us, europe-west1…)')
    .optional(),
  /** Compute API endpoint: a host name, or a URL (`http://127.0.0.1:8080` in tests). Default compute.googleapis.com. */
  apiEndpoint: z.string().min(1).optional(),
  /** Cloud Resource Manager endpoint (doctor's permission check). Default https://cloudresourcemanager.googleapis.com. */
  resourceManagerEndpoint: z.url().optional(),
  /** Metadata server: host[:port] or URL. Default $GCE_METADATA_HOST, else metadata.google.internal. */
  metadataEndpoint: z.string().min(1).optional(),
  /** Where the by-id links of disks live (`google-<device name>`). Default /dev/disk/by-id. */
  deviceDir: z.string().refine(isAbsolute, 'must be an absolute path').optional(),
  /**
   * How the temporary disk made from a snapshot is attached to read it; it is mounted read-only either
   * way. READ_WRITE (default): the mount replays the filesystem's journal into that throw-away disk, as
   * an XFS snapshot always needs (even frozen, XFS leaves its log to recover) and a crash-consistent one
   * (quiesce none or stop: a mounted filesystem's journal is dirty) too. READ_ONLY: only for ext4 with
   * fsfreeze, which leaves the journal clean.
   */
  attachMode: z.enum(['READ_ONLY', 'READ_WRITE']).optional(),
  /** Type of that temporary disk (pd-standard, pd-balanced, pd-ssd…). Default: Google's (pd-standard). */
  diskType: name.optional(),
  /** Time allowed for one API request. Default 60s. */
  requestTimeout: duration.optional(),
  /** First delay of the provider's polls (operations, snapshot status, device). Default 1s. */
  pollInterval: duration.optional(),
  /** Longest wait for an operation (disk created, attached, detached, deleted). Default 15m. */
  operationTimeout: duration.optional(),
});

export type GcpSettings = z.infer<typeof settingsSchema>;

export interface DiskOverride {
  disk: string;
  /** Where the disk is mounted; undefined for the disk holding DATA_DIR itself. */
  mountPoint?: string;
}

export interface ApiEndpoint {
  apiEndpoint: string;
  port?: number;
  protocol?: 'http' | 'https';
}

/** The settings with every default applied and durations in milliseconds. */
export interface ResolvedGcpSettings {
  project?: string;
  zone?: string;
  instance?: string;
  disks: DiskOverride[];
  snapshotLocation?: string;
  api?: ApiEndpoint;
  resourceManagerEndpoint: string;
  metadataUrl: string;
  /** True when the setting (not the environment) chose the metadata server. */
  metadataFromSettings: boolean;
  deviceDir: string;
  attachMode: 'READ_ONLY' | 'READ_WRITE';
  diskType?: string;
  requestTimeoutMs: number;
  pollIntervalMs: number;
  operationTimeoutMs: number;
}

export const defaultMetadataHost = 'metadata.google.internal';
export const defaultDeviceDir = '/dev/disk/by-id';
export const defaultResourceManagerEndpoint = 'https://cloudresourcemanager.googleapis.com';

/** Apply defaults. `env` supplies GCE_METADATA_HOST / GCE_METADATA_IP, Google's own variables. */
export function resolveSettings(
  settings: GcpSettings,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedGcpSettings {
  const metadata =
    settings.metadataEndpoint ?? env.GCE_METADATA_IP ?? env.GCE_METADATA_HOST ?? defaultMetadataHost;
  return {
    ...(settings.project ? { project: settings.project } : {}),
    ...(settings.zone ? { zone: settings.zone } : {}),
    ...(settings.instance ? { instance: settings.instance } : {}),
    disks: (settings.disks ?? []).map(parseDiskOverride),
    ...(settings.snapshotLocation ? { snapshotLocation: settings.snapshotLocation } : {}),
    ...(settings.apiEndpoint ? { api: parseApiEndpoint(settings.apiEndpoint) } : {}),
    resourceManagerEndpoint: (settings.resourceManagerEndpoint ?? defaultResourceManagerEndpoint).replace(
      /\/+$/,
      '',
    ),
    metadataUrl: (/^https?:\/\//.test(metadata) ? metadata : `http://${metadata}`).replace(/\/+$/, ''),
    metadataFromSettings: settings.metadataEndpoint !== undefined,
    deviceDir: settings.deviceDir ?? defaultDeviceDir,
    attachMode: settings.attachMode ?? 'READ_WRITE',
    ...(settings.diskType ? { diskType: settings.diskType } : {}),
    requestTimeoutMs: parseDuration(settings.requestTimeout ?? '60s', 'requestTimeout'),
    pollIntervalMs: Math.max(1, parseDuration(settings.pollInterval ?? '1s', 'pollInterval')),
    operationTimeoutMs: parseDuration(settings.operationTimeout ?? '15m', 'operationTimeout'),
  };
}

/**
 * `compute.googleapis.com` → the SDK's `apiEndpoint`; `http://127.0.0.1:8080` → host, port and protocol
 * apart (the SDK ignores a port written inside `apiEndpoint`).
 */
export function parseApiEndpoint(value: string): ApiEndpoint {
  if (!/^https?:\/\//.test(value)) return { apiEndpoint: value };
  const url = new URL(value);
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  return {
    apiEndpoint: url.hostname,
    port: url.port ? Number(url.port) : protocol === 'http' ? 80 : 443,
    protocol,
  };
}

function parseDiskOverride(text: string): DiskOverride {
  const match = diskOverridePattern.exec(text)!;
  return match[3]
    ? { disk: match[1]!, mountPoint: match[3].replace(/\/+$/, '') || '/' }
    : { disk: match[1]! };
}
