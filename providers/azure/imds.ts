/**
 * The Azure Instance Metadata Service: who this VM is (subscription, resource group, name, location,
 * zone, cloud) and its data disks by LUN. Plain http to a link-local address, `Metadata: true`, no
 * proxy (Node's fetch ignores HTTP_PROXY), a short timeout: off Azure it does not answer at all.
 */
import { DssnapError } from '../../src/errors.js';
import { AzureError } from './errors.js';

export const defaultImdsEndpoint = 'http://169.254.169.254';
const apiVersion = '2021-02-01';

export interface ImdsDataDisk {
  lun: number;
  name: string;
  /** Managed disk resource id. */
  diskId: string;
  storageAccountType: string;
  sizeGb: number;
}

export interface InstanceMetadata {
  subscription: string;
  resourceGroup: string;
  vmName: string;
  /** The VM's resource id. */
  vmId: string;
  location: string;
  /** '' when the VM is not zonal. */
  zone: string;
  /** e.g. AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud. */
  azEnvironment: string;
  dataDisks: ImdsDataDisk[];
}

interface RawDataDisk {
  lun?: string;
  name?: string;
  diskSizeGB?: string;
  managedDisk?: { id?: string; storageAccountType?: string };
}

interface RawInstance {
  compute?: {
    subscriptionId?: string;
    resourceGroupName?: string;
    name?: string;
    resourceId?: string;
    location?: string;
    zone?: string;
    azEnvironment?: string;
    storageProfile?: { dataDisks?: RawDataDisk[] };
  };
}

/**
 * Read the instance metadata. Throws UNSUPPORTED (permanent) when IMDS does not answer (not an Azure
 * VM), an AzureError (retryable) for a 429/5xx answer. Changes nothing.
 */
export async function readInstanceMetadata(
  endpoint: string = defaultImdsEndpoint,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<InstanceMetadata> {
  const url = `${endpoint.replace(/\/+$/, '')}/metadata/instance?api-version=${apiVersion}`;
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 5_000);
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { Metadata: 'true' },
      signal: options.signal ? AbortSignal.any([timeout, options.signal]) : timeout,
    });
  } catch (error) {
    throw new DssnapError(
      'UNSUPPORTED',
      `The Azure Instance Metadata Service does not answer at ${endpoint}: this does not look like an Azure VM`,
      {
        hint: 'Run dssnap on the Azure VM that holds DATA_DIR, or set provider-options (subscription, resourceGroup, vmName, location, disk) when IMDS is blocked.',
        details: { endpoint },
        cause: error,
      },
    );
  }
  const text = await response.text();
  if (!response.ok) {
    throw new AzureError(
      {
        operation: 'read the instance metadata',
        statusCode: response.status,
        notFound: false,
        retryable: response.status === 429 || response.status >= 500,
      },
      `The Azure Instance Metadata Service answered ${response.status}: ${text.slice(0, 200)}`,
    );
  }
  return parseInstanceMetadata(text, endpoint);
}

/** Parse the body of `/metadata/instance`. Throws PROVIDER_ERROR when a needed field is missing. Pure. */
export function parseInstanceMetadata(text: string, endpoint = defaultImdsEndpoint): InstanceMetadata {
  let raw: RawInstance;
  try {
    raw = JSON.parse(text) as RawInstance;
  } catch (error) {
    throw new DssnapError(
      'PROVIDER_ERROR',
      `The Azure Instance Metadata Service at ${endpoint} sent invalid JSON`,
      {
        cause: error,
      },
    );
  }
  const compute = raw.compute ?? {};
  const missing = (['subscriptionId', 'resourceGroupName', 'name', 'location'] as const).filter(
    (field) => !compute[field],
  );
  if (missing.length > 0) {
    throw new DssnapError(
      'PROVIDER_ERROR',
      `The Azure Instance Metadata Service at ${endpoint} did not report ${missing.join(', ')}`,
      { details: { endpoint, missing } },
    );
  }
  const dataDisks = (compute.storageProfile?.dataDisks ?? [])
    .filter((disk) => disk.managedDisk?.id && disk.lun !== undefined && /^\d+$/.test(disk.lun))
    .map((disk) => ({
      lun: Number(disk.lun),
      name: disk.name ?? '',
      diskId: disk.managedDisk!.id!,
      storageAccountType: disk.managedDisk?.storageAccountType ?? '',
      sizeGb: Number(disk.diskSizeGB ?? 0),
    }));
  return {
    subscription: compute.subscriptionId!,
    resourceGroup: compute.resourceGroupName!,
    vmName: compute.name!,
    vmId:
      compute.resourceId ??
      `/subscriptions/${compute.subscriptionId}/resourceGroups/${compute.resourceGroupName}/providers/Microsoft.Compute/virtualMachines/${compute.name}`,
    location: compute.location!,
    zone: compute.zone ?? '',
    azEnvironment: compute.azEnvironment ?? 'AzurePublicCloud',
    dataDisks,
  };
}

/** ARM endpoint and token audience of each Azure cloud, by IMDS azEnvironment. */
export function cloudEndpoints(azEnvironment: string): { endpoint: string; scope: string } {
  const endpoint =
    {
      azureusgovernmentcloud: 'https://management.usgovcloudapi.net',
      azurechinacloud: 'https://management.chinacloudapi.cn',
      azuregermancloud: 'https://management.microsoftazure.de',
    }[azEnvironment.toLowerCase()] ?? 'https://management.azure.com';
  return { endpoint, scope: `${endpoint}/.default` };
}
