/**
 * The Azure provider's settings (config file `provider-options:`), strict: unknown keys are errors
 * listing the valid ones. Everything is optional on an Azure VM: the subscription, resource group, VM,
 * location and zone come from the Instance Metadata Service, the ARM endpoint from its `azEnvironment`.
 */
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { parseProviderSettings } from '../../src/provider/settings.js';

/** Disk SKUs a temporary disk may be created with. */
export const diskSkus = [
  'Standard_LRS',
  'StandardSSD_LRS',
  'StandardSSD_ZRS',
  'Premium_LRS',
  'Premium_ZRS',
  'PremiumV2_LRS',
  'UltraSSD_LRS',
] as const;
export type DiskSku = (typeof diskSkus)[number];

const diskOverridePattern =
  /^\/?subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Compute\/disks\/[^/=]+(=\/.*)?$/i;

const httpsUrl = z
  .string()
  .url()
  .refine((value) => value.startsWith('https://'), 'must be an https:// URL (ARM refuses tokens over http)');

export const azureSettingsSchema = z.strictObject({
  /** Subscription id of the VM and of the resources dssnap creates. Default: from IMDS. */
  subscription: z.string().min(1).optional(),
  /** Resource group of the VM. Default: from IMDS. */
  resourceGroup: z.string().min(1).optional(),
  /** Name of this VM. Default: from IMDS. */
  vmName: z.string().min(1).optional(),
  /** Azure region, e.g. `westeurope`. Default: from IMDS. */
  location: z.string().min(1).optional(),
  /** Availability zone of the VM ('' for none). Default: from IMDS. */
  zone: z.string().optional(),
  /** Resource group where snapshots and temporary disks are created and listed. Default: the VM's. */
  snapshotResourceGroup: z.string().min(1).optional(),
  /**
   * The managed disk(s) behind DATA_DIR, overriding the LUN lookup (`--disk`): a disk resource id for
   * the filesystem holding DATA_DIR, or `<id>=/mount/point` for a filesystem mounted below it.
   */
  disks: z
    .array(
      z
        .string()
        .regex(diskOverridePattern, "must be '<disk resource id>' or '<disk resource id>=/mount/point'"),
    )
    .optional(),
  /** Full snapshots instead of incremental ones (the default is incremental: cheaper, faster). */
  fullSnapshot: z.boolean().optional(),
  /** SKU of the temporary disk made from a snapshot. Default: the source disk's SKU. */
  exposureDiskSku: z.enum(diskSkus).optional(),
  /** ARM endpoint. Default: the one of the VM's cloud (IMDS azEnvironment), else management.azure.com. */
  endpoint: httpsUrl.optional(),
  /** PEM file of extra CA certificates to trust for the ARM endpoint (Azure Stack Hub, a TLS-inspecting proxy). */
  caFile: z.string().refine(isAbsolute, 'must be an absolute path').optional(),
  /** Instance Metadata Service base URL. Default http://169.254.169.254. */
  imdsEndpoint: z.string().url().optional(),
  /** Directory of LUN symlinks (`lun<N>` or `<N>`). Default: /dev/disk/azure/scsi1, then …/data/by-lun. */
  deviceDir: z.string().refine(isAbsolute, 'must be an absolute path').optional(),
  /** Client id of the user-assigned managed identity to use, when the VM has several. */
  managedIdentityClientId: z.string().min(1).optional(),
  /** Interval between polls of a long-running ARM operation. Default 1000 ms. */
  pollIntervalMs: z.number().int().positive().optional(),
  /** How long to wait for an attached disk's device to appear. Default 120 000 ms. */
  deviceTimeoutMs: z.number().int().positive().optional(),
  /** Retries of one ARM request by the SDK (429 and 5xx, honouring Retry-After). Default 3. */
  requestRetries: z.number().int().nonnegative().optional(),
  /** First delay between those retries, doubled each time. Default 800 ms. */
  requestRetryDelayMs: z.number().int().positive().optional(),
});

export type AzureSettings = z.infer<typeof azureSettingsSchema>;

/** Parse and validate; throws CONFIG_INVALID naming the setting, the value and the rule. */
export function parseAzureSettings(settings: Readonly<Record<string, unknown>> | undefined): AzureSettings {
  return parseProviderSettings('azure', azureSettingsSchema, settings);
}

export interface DiskOverride {
  diskId: string;
  /** The mount point it holds; undefined for the filesystem holding DATA_DIR. */
  mountPoint?: string;
}

/** The `disks` setting as overrides (`id` or `id=/mount/point`, trailing slashes dropped). Pure. */
export function diskOverrides(settings: AzureSettings): DiskOverride[] {
  return (settings.disks ?? []).map((entry) => {
    const at = entry.indexOf('=');
    if (at < 0) return { diskId: entry };
    return { diskId: entry.slice(0, at), mountPoint: entry.slice(at + 1).replace(/(?<=.)\/+$/, '') };
  });
}
