/**
 * A fake of the Azure Instance Metadata Service (IMDS) on 127.0.0.1 over plain http, as the real one
 * at 169.254.169.254: `GET /metadata/instance?api-version=…` (compute: subscription, resource group,
 * VM name, location, zone, storage profile with the data disks and their LUNs — as strings, as IMDS
 * sends them) and `GET /metadata/identity/oauth2/token?resource=…` (a managed identity token the ARM
 * fake accepts). Every request needs the `Metadata: true` header, else 400 as IMDS answers. The
 * instance data is read live from the ARM fake, so attaches show up as they do on Azure.
 *
 * `@azure/identity`'s ManagedIdentityCredential uses this fake when the environment variable
 * `AZURE_POD_IDENTITY_AUTHORITY_HOST` is set to its `url`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AzureArmFake } from './azure-arm.js';

export interface AzureImdsFake {
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  url: string;
  /** Every request path with its query, in order. */
  readonly requests: string[];
  /** Answer every request with this status until called with undefined (an unreachable IMDS: 0 closes the socket). */
  failWith(status: number | undefined): void;
  /** Refuse tokens as IMDS does on a VM without a managed identity (400 Identity not found), until false. */
  noIdentity(on: boolean): void;
  close(): Promise<void>;
}

/** Start the fake for the VM `vmName` of `arm`; resolves when it listens. */
export async function startAzureImdsFake(arm: AzureArmFake, vmName: string): Promise<AzureImdsFake> {
  const requests: string[] = [];
  let failure: number | undefined;
  let withoutIdentity = false;

  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://imds');
    requests.push(`${url.pathname}${url.search}`);
    if (failure === 0) {
      request.socket.destroy();
      return;
    }
    if (failure !== undefined) {
      sendJson(response, failure, { error: 'injected failure' });
      return;
    }
    if (request.headers.metadata !== 'true' || request.headers['x-forwarded-for'] !== undefined) {
      sendJson(response, 400, { error: 'Bad request. Required metadata header not specified' });
      return;
    }
    if (!url.searchParams.get('api-version')) {
      sendJson(response, 400, {
        error:
          'Bad request. api-version was not specified in the request. For more information refer to aka.ms/azureimds',
        newest_versions: ['2023-07-01', '2021-02-01'],
      });
      return;
    }
    if (url.pathname === '/metadata/instance' || url.pathname === '/metadata/instance/') {
      sendJson(response, 200, instance(arm, vmName));
      return;
    }
    if (url.pathname.replace(/\/$/, '') === '/metadata/identity/oauth2/token') {
      const resource = url.searchParams.get('resource');
      if (!resource) {
        sendJson(response, 400, {
          error: 'invalid_request',
          error_description: 'Required query variable resource is missing',
        });
        return;
      }
      if (withoutIdentity) {
        sendJson(response, 400, { error: 'invalid_request', error_description: 'Identity not found' });
        return;
      }
      const token = `fake-mi-token-${randomUUID()}`;
      arm.acceptToken(token);
      const now = Math.floor(Date.now() / 1000);
      sendJson(response, 200, {
        access_token: token,
        client_id: '00000000-0000-4000-8000-00000000c11e',
        expires_in: '86399',
        expires_on: String(now + 86399),
        ext_expires_in: '86399',
        not_before: String(now),
        resource,
        token_type: 'Bearer',
      });
      return;
    }
    sendJson(response, 404, { error: 'Not found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    failWith: (status) => {
      failure = status;
    },
    noIdentity: (on) => {
      withoutIdentity = on;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The `compute` part of the instance metadata (api-version 2021-02-01 and later). */
function instance(arm: AzureArmFake, vmName: string): unknown {
  const vm = arm.vm(vmName);
  const disks = new Map(arm.disks().map((disk) => [disk.id.toLowerCase(), disk]));
  return {
    compute: {
      azEnvironment: 'AzurePublicCloud',
      location: vm.location,
      name: vm.name,
      osType: 'Linux',
      resourceGroupName: vm.resourceGroup,
      resourceId: vm.id,
      subscriptionId: arm.subscription,
      vmId: vm.vmId,
      vmSize: vm.vmSize,
      zone: vm.zone ?? '',
      storageProfile: {
        dataDisks: vm.dataDisks.map((dataDisk) => {
          const disk = disks.get(dataDisk.diskId.toLowerCase());
          return {
            bytesPerSecondThrottle: '125829120',
            caching: dataDisk.caching,
            createOption: 'Attach',
            diskCapacityBytes: String((disk?.sizeGb ?? 0) * 1024 ** 3),
            diskSizeGB: String(disk?.sizeGb ?? 0),
            image: { uri: '' },
            isSharedDisk: 'false',
            isUltraDisk: 'false',
            lun: String(dataDisk.lun),
            managedDisk: { id: disk?.id ?? dataDisk.diskId, storageAccountType: disk?.sku ?? 'Premium_LRS' },
            name: disk?.name ?? dataDisk.diskId.split('/').pop(),
            opsPerSecondThrottle: '5000',
            vhd: { uri: '' },
            writeAcceleratorEnabled: 'false',
          };
        }),
        osDisk: {
          caching: 'ReadWrite',
          createOption: 'FromImage',
          diskSizeGB: '30',
          managedDisk: {
            id: `${vm.id.replace(/virtualMachines\/.*$/, 'disks/')}${vm.name}_OsDisk_1`,
            storageAccountType: 'Premium_LRS',
          },
          name: `${vm.name}_OsDisk_1`,
          osType: 'Linux',
        },
      },
    },
  };
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(text)),
  });
  response.end(text);
}
