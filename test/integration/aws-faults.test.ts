/**
 * EC2 faults, injected by the proxy between the real SDK and moto: throttling, 500s, lost answers
 * (timeouts after EC2 did the work), connection resets, IncorrectState, denials. Each backup either
 * succeeds after retries or fails with everything undone — afterwards moto holds no temporary volume
 * and no unretained snapshot, nothing is mounted or frozen, DSS runs, no journal is left.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { startDss } from '../../src/dss/control.js';
import { silentLogger } from '../../src/log.js';
import type { FaultRule } from '../fakes/fault-proxy.js';
import { type AwsDssHost, type AwsFault, cleanHostState, createAwsDssHost } from '../support/aws-cloud.js';

const log = silentLogger();

type Rule = Omit<FaultRule, 'action' | 'match'>;
type Outcome = 'succeeds' | 'fails';

interface Case {
  title: string;
  action: string;
  fault: AwsFault;
  rule: Rule;
  outcome: Outcome;
}

const cases: Case[] = [
  {
    title: 'CreateSnapshot throttled twice (RequestLimitExceeded)',
    action: 'CreateSnapshot',
    fault: 'throttle',
    rule: { times: 2 },
    outcome: 'succeeds',
  },
  {
    title: 'CreateSnapshot: SnapshotCreationPerVolumeRateExceeded',
    action: 'CreateSnapshot',
    fault: 'rate',
    rule: { times: 1 },
    outcome: 'succeeds',
  },
  {
    title: 'CreateSnapshot: answer lost after EC2 took it',
    action: 'CreateSnapshot',
    fault: 'timeout',
    rule: { times: 1, when: 'after' },
    outcome: 'fails',
  },
  {
    title: 'CreateSnapshot: 500 (never repeated: not idempotent)',
    action: 'CreateSnapshot',
    fault: 'server',
    rule: { times: 1 },
    outcome: 'fails',
  },
  { title: 'CreateSnapshot denied', action: 'CreateSnapshot', fault: 'denied', rule: {}, outcome: 'fails' },
  {
    title: 'DescribeSnapshots: 500 twice',
    action: 'DescribeSnapshots',
    fault: 'server',
    rule: { times: 2 },
    outcome: 'succeeds',
  },
  {
    title: 'DescribeSnapshots: connection reset',
    action: 'DescribeSnapshots',
    fault: 'reset',
    rule: { times: 1 },
    outcome: 'succeeds',
  },
  {
    title: 'DescribeVolumes throttled past the SDK retries',
    action: 'DescribeVolumes',
    fault: 'throttle',
    rule: { times: 3 },
    outcome: 'succeeds',
  },
  {
    title: 'DescribeInstances: 500',
    action: 'DescribeInstances',
    fault: 'server',
    rule: { times: 1 },
    outcome: 'succeeds',
  },
  {
    title: 'CreateVolume: answer lost after EC2 made the volume',
    action: 'CreateVolume',
    fault: 'timeout',
    rule: { times: 1, when: 'after' },
    outcome: 'succeeds',
  },
  { title: 'CreateVolume denied', action: 'CreateVolume', fault: 'denied', rule: {}, outcome: 'fails' },
  {
    title: 'AttachVolume throttled',
    action: 'AttachVolume',
    fault: 'throttle',
    rule: { times: 2 },
    outcome: 'succeeds',
  },
  {
    title: 'AttachVolume: connection reset after EC2 attached',
    action: 'AttachVolume',
    fault: 'reset',
    rule: { times: 1, when: 'after' },
    outcome: 'succeeds',
  },
  { title: 'AttachVolume denied', action: 'AttachVolume', fault: 'denied', rule: {}, outcome: 'fails' },
  {
    title: 'DetachVolume: IncorrectState twice',
    action: 'DetachVolume',
    fault: 'incorrect-state',
    rule: { times: 2 },
    outcome: 'succeeds',
  },
  {
    title: 'DetachVolume: answer lost after EC2 detached',
    action: 'DetachVolume',
    fault: 'timeout',
    rule: { times: 1, when: 'after' },
    outcome: 'succeeds',
  },
  {
    title: 'DeleteVolume: 500 four times',
    action: 'DeleteVolume',
    fault: 'server',
    rule: { times: 4 },
    outcome: 'succeeds',
  },
  {
    title: 'DeleteSnapshot: answer lost after EC2 deleted it',
    action: 'DeleteSnapshot',
    fault: 'timeout',
    rule: { times: 1, when: 'after' },
    outcome: 'succeeds',
  },
  {
    title: 'DeleteSnapshot denied once',
    action: 'DeleteSnapshot',
    fault: 'denied',
    rule: { times: 1 },
    outcome: 'fails',
  },
];

describe('EC2 faults during an aws backup', () => {
  let host: AwsDssHost;

  beforeAll(async () => {
    host = await createAwsDssHost({ generate: { files: 150, bytes: 1024 ** 2 } });
    await startDss(host.info, { log });
  });
  afterEach(() => {
    host?.cloud.proxy.clearFaults();
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it.each(cases.map((c) => [`${c.title}: the run ${c.outcome}, leaving nothing behind`, c] as const))(
    '%s',
    async (_name, { action, fault, rule, outcome }) => {
      host.cloud.fail(action, fault, rule);
      const mark = host.cloud.proxy.mark();

      const result = await runBackup(host.options(), { log }).then(
        (done) => ({ exitCode: done.exitCode, error: undefined }),
        (error: unknown) => ({
          exitCode: undefined,
          error: error as Error & { code?: string; hint?: string },
        }),
      );

      const hit = host.cloud.proxy.since(mark).filter((r) => r.fault);
      expect(hit.length, `the ${action} fault was never hit`).toBeGreaterThan(0);
      if (outcome === 'succeeds') {
        expect(result.error?.message).toBeUndefined();
        expect(result.exitCode).toBe(0);
      } else {
        expect(result.error?.message).toMatch(fault === 'denied' ? `AWS denied ec2:${action}` : action);
        if (fault === 'denied') expect(result.error?.hint).toContain(`Allow ec2:${action}`);
      }
      expect(await host.state()).toEqual(cleanHostState);
    },
  );

  it('retains the snapshot only when tagging succeeded: a denied CreateTags undoes the whole run', async () => {
    host.cloud.fail('CreateTags', 'denied', { times: 1 });
    const retainedBefore = await host.cloud.retainedSnapshots();

    const failed = runBackup(host.options({ keepSnapshot: true }), { log });

    await expect(failed).rejects.toThrow(/AWS denied ec2:CreateTags/);
    expect(await host.cloud.retainedSnapshots()).toEqual(retainedBefore);
    expect(await host.state()).toEqual(cleanHostState);
  });
});
