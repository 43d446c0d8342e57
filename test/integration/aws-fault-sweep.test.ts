/**
 * A fault at every EC2 call of a backup, one position at a time: call #1 fails, then call #2, … until
 * the run makes fewer calls than the position. A permanent fault (a denial) fails the run with everything
 * undone; a throttling fault is retried and the run succeeds. Either way nothing is left behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import {
  type AwsDssHost,
  type AwsFault,
  cleanHostState,
  createAwsDssHost,
  faultAction,
} from '../support/aws-cloud.js';

const log = silentLogger();

describe('a fault at each EC2 call of an aws backup', () => {
  let host: AwsDssHost;

  beforeAll(async () => {
    host = await createAwsDssHost({ generate: { files: 60, bytes: 256 * 1024 } });
    await startDss(host.info, { log });
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it.each([
    ['denied', 'fails with everything undone'],
    ['throttle', 'succeeds after a retry'],
  ] as const)(
    '%s at call #1, #2, …: the run %s and leaves nothing behind',
    async (fault: AwsFault, _outcome) => {
      const lines: string[] = [];
      for (let position = 1; position < 100; position++) {
        const injected = host.cloud.proxy.inject({
          action: faultAction(fault),
          after: position - 1,
          times: 1,
        });
        const mark = host.cloud.proxy.mark();

        const outcome = await runBackup(host.options(), { log }).then(
          () => 'succeeded',
          (error: Error) => `failed: ${error.message}`,
        );

        injected.remove();
        const hit = host.cloud.proxy.since(mark).find((request) => request.fault);
        if (!hit) break;
        lines.push(`#${String(position).padStart(2)} ${hit.name.padEnd(18)} ${outcome}`);
        if (fault === 'throttle')
          expect(outcome, `throttled call #${position} (${hit.name})`).toBe('succeeded');
        else
          expect(outcome, `denied call #${position} (${hit.name})`).toContain(`AWS denied ec2:${hit.name}`);
        expect(await host.state(), `after a ${fault} fault at call #${position} (${hit.name})`).toEqual(
          cleanHostState,
        );
      }
      console.log(`A ${fault} fault at each EC2 call of a backup:\n${lines.join('\n')}`);
      expect(lines.length).toBeGreaterThanOrEqual(12);
    },
    240_000,
  );
});
