/**
 * A transient ARM fault at every kind of call a backup makes (through the fault-injecting proxy, in
 * ARM's error shape: 429 with Retry-After, 500, 503, 409 OperationNotAllowed, a reset connection —
 * before the request reaches ARM, or after it did the work): the SDK or the retry decorator rides it
 * out, the backup completes, and nothing is left behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import {
  type AzureDssHost,
  type AzureFault,
  cleanAzureHostState,
  createAzureDssHost,
} from '../support/azure-cloud.js';

const log = silentLogger();

describe('transient ARM faults during an azure backup', () => {
  let host: AzureDssHost;

  beforeAll(async () => {
    host = await createAzureDssHost({ fsType: 'ext4' });
    await startDss(host.info, { log });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it('survives one transient fault on every kind of ARM call of the same run', async () => {
    const faults: Array<[string, AzureFault]> = [
      ['PUT snapshots', 'throttle'],
      ['GET DiskOperations', 'server'],
      ['GET snapshots', 'unavailable'],
      ['PUT disks', 'reset'],
      ['GET disks', 'throttle'],
      ['GET virtualMachines', 'server'],
      ['POST attachDetachDataDisks', 'conflict'],
      ['GET operations', 'reset'],
      ['GET operations monitor', 'server'],
      ['DELETE disks', 'unavailable'],
      ['DELETE snapshots', 'reset'],
    ];
    host.cloud.proxy.clearFaults();
    for (const [name, fault] of faults) host.cloud.fail(name, fault, { times: 1 });
    const mark = host.cloud.proxy.mark();

    const result = await runBackup(host.options(), { log });

    expect(result.exitCode).toBe(0);
    const hit = host.cloud.proxy.since(mark).filter((request) => request.fault);
    expect(hit.map((request) => request.name).sort()).toEqual(faults.map(([name]) => name).sort());
    expect(await host.state()).toEqual(cleanAzureHostState);
  });

  it.each<[string, AzureFault]>([
    ['PUT snapshots', 'reset'],
    ['PUT disks', 'server'],
    ['POST attachDetachDataDisks', 'reset'],
    ['DELETE snapshots', 'reset'],
  ])(
    '%s failing (%s) after ARM did the work: the retry finds it done and the backup completes',
    async (name, fault) => {
      host.cloud.proxy.clearFaults();
      host.cloud.fail(name, fault, { times: 1, when: 'after' });
      const mark = host.cloud.proxy.mark();

      const result = await runBackup(host.options(), { log });

      expect(result.exitCode).toBe(0);
      expect(
        host.cloud.proxy
          .since(mark)
          .filter((request) => request.fault)
          .map((request) => request.name),
      ).toEqual([name]);
      expect(await host.state()).toEqual(cleanAzureHostState);
    },
  );

  it('honours Retry-After on a 429 and still completes', async () => {
    host.cloud.proxy.clearFaults();
    host.cloud.fail('GET snapshots', 'throttle', { times: 1 });
    const mark = host.cloud.proxy.mark();
    const started = Date.now();

    const result = await runBackup(host.options(), { log });

    expect(result.exitCode).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    const names = host.cloud.proxy
      .since(mark)
      .map((request) => `${request.name}${request.fault ? ' (429)' : ''}`);
    const throttled = names.indexOf('GET snapshots (429)');
    expect(names[throttled + 1]).toBe('GET snapshots');
  });
});
