/**
 * The Terraform examples as a user meets them: `terraform fmt` clean, variables described and validated,
 * providers pinned; and the shared scheduled-backup module, which needs no provider, initialised,
 * validated and applied offline — the cloud-init it renders is run through `dssnap schedule --dry-run`
 * and its config file through the provider's settings schema. The examples themselves need the aws,
 * google and azurerm providers, which cannot be downloaded here: their IAM content is checked by parsing
 * (test/integration/permissions-*.test.ts).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadProvider } from '../../src/provider/registry.js';
import { dssnap } from '../support/cli.js';
import { examplesDir, parseExample } from '../support/permission-recorder.js';

const clouds = ['aws', 'gcp', 'azure'] as const;

interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Run terraform offline: no version check, no prompts, its working data in `dataDir`. */
async function terraform(args: string[], cwd: string, dataDir: string): Promise<Run> {
  const result = await execa('terraform', args, {
    cwd,
    reject: false,
    stdin: 'ignore',
    env: { CHECKPOINT_DISABLE: '1', TF_IN_AUTOMATION: '1', TF_INPUT: '0', TF_DATA_DIR: dataDir },
  });
  if (result.failed && result.exitCode === undefined) {
    throw new Error(`terraform could not be run (is it installed on PATH?): ${result.message}`);
  }
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

describe('terraform examples', () => {
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'dssnap-terraform-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('are terraform fmt clean', async () => {
    const result = await terraform(['fmt', '-check', '-recursive', '-no-color', examplesDir], work, work);

    expect(result.stdout, 'files terraform fmt would rewrite').toBe('');
    expect(result.exitCode).toBe(0);
  });

  it.each(clouds)(
    '%s: describes every variable and output, validates every required input, pins its provider',
    async (cloud) => {
      const hcl = await parseExample(join(examplesDir, cloud));
      const variables = hcl.variable as Record<string, Array<Record<string, unknown>>>;
      const outputs = hcl.output as Record<string, Array<Record<string, unknown>>>;
      const terraformBlock = (hcl.terraform as Array<Record<string, unknown>>)[0]!;
      const pins = (terraformBlock.required_providers as Array<Record<string, { version: string }>>)[0]!;

      const undescribed = [...Object.entries(variables), ...Object.entries(outputs)]
        .filter(([, [block]]) => !(typeof block!.description === 'string' && block!.description.length > 10))
        .map(([name]) => name);
      const unvalidated = Object.entries(variables)
        .filter(([, [block]]) => !('default' in block!) && !block!.validation)
        .map(([name]) => name);
      expect(undescribed).toEqual([]);
      expect(unvalidated).toEqual([]);
      expect(Object.keys(outputs).length).toBeGreaterThanOrEqual(2);
      expect(Object.values(pins).map((p) => p.version)).toEqual([expect.stringMatching(/^~> \d+\.\d+$/)]);
      expect(terraformBlock.required_version).toMatch(/^>= 1\.\d+$/);
    },
  );

  describe('the scheduled backup (cloud-init)', () => {
    let root: string;

    beforeAll(async () => {
      root = await mkdtemp(join(work, 'root-'));
      await writeFile(
        join(root, 'main.tf'),
        [
          'variable "provider_id" {}',
          'variable "cron" {}',
          'variable "provider_options" { type = map(string) }',
          'module "schedule" {',
          `  source           = "${join(examplesDir, 'modules', 'scheduled-backup')}"`,
          '  provider_id      = var.provider_id',
          '  cron             = var.cron',
          '  data_dir         = "/data/dss"',
          `  destination      = "/backups/dss's"`,
          '  provider_options = var.provider_options',
          '}',
          'output "cloud_init" { value = module.schedule.cloud_init }',
          '',
        ].join('\n'),
      );
      const init = await terraform(['init', '-no-color', '-backend=false'], root, join(root, '.tf'));
      expect(init.exitCode, init.stderr).toBe(0);
    });

    /** Apply with these variables (only local state and outputs: nothing is created anywhere). */
    async function apply(
      vars: Record<string, string>,
    ): Promise<Run & { output(name: string): Promise<Run> }> {
      const state = join(root, `${Math.random().toString(36).slice(2)}.tfstate`);
      const applied = await terraform(
        [
          'apply',
          '-auto-approve',
          '-no-color',
          `-state=${state}`,
          ...Object.entries(vars).flatMap(([k, v]) => ['-var', `${k}=${v}`]),
        ],
        root,
        join(root, '.tf'),
      );
      return {
        ...applied,
        output: (name) =>
          terraform(['output', '-no-color', `-state=${state}`, '-raw', name], root, join(root, '.tf')),
      };
    }

    it('validates without any provider', async () => {
      const result = await terraform(['validate', '-no-color'], root, join(root, '.tf'));

      expect(result.exitCode, result.stderr).toBe(0);
    });

    it.each([
      ['aws', { region: 'eu-west-1' }],
      ['gcp', { attachMode: 'READ_ONLY' }],
      ['azure', { managedIdentityClientId: '00000000-0000-4000-8000-000000000001' }],
    ])(
      '%s: renders a config the provider accepts and a schedule dssnap installs',
      async (provider, options) => {
        const applied = await apply({
          provider_id: provider,
          cron: '15 2 * * *',
          provider_options: toHcl(options),
        });
        expect(applied.exitCode, applied.stderr).toBe(0);
        const output = await applied.output('cloud_init');
        expect(output.exitCode, output.stderr).toBe(0);
        const cloudInit = output.stdout;

        expect(cloudInit.startsWith('#cloud-config\n')).toBe(true);
        const doc = parseYaml(cloudInit) as {
          write_files: Array<{ path: string; permissions: string; content: string }>;
          runcmd: string[];
        };
        const [config] = doc.write_files;
        expect(config).toMatchObject({ path: '/etc/dssnap/config.json', permissions: '0600' });
        const settings = (JSON.parse(config!.content) as { 'provider-options': Record<string, unknown> })[
          'provider-options'
        ];
        expect(settings).toEqual(options);
        await expect(loadProvider(provider, { stateDir: work, settings })).resolves.toMatchObject({
          id: provider,
        });
        const schedule = doc.runcmd.at(-1)!;
        expect(schedule).toMatch(/^dssnap schedule --cron '15 2 \* \* \*' -- backup /);
        // The same command, by the built CLI, into a scratch root and printed only.
        const words = shellWords(schedule).slice(1);
        const dry = await dssnap([
          words[0]!,
          '--dry-run',
          '--init',
          'systemd',
          '--root',
          work,
          ...words.slice(1),
        ]);
        expect(dry.exitCode, dry.stderr).toBe(0);
        expect(dry.stdout).toContain("Would write schedule 'dss' (systemd): 15 2 * * *");
        expect(dry.stdout).toMatch(
          new RegExp(
            `ExecStart=.* backup --config /etc/dssnap/config.json --provider ${provider} --data-dir /data/dss --to "?/backups/dss's"?`,
          ),
        );
      },
    );

    it('refuses a cron expression that is not five fields, naming the variable', async () => {
      const result = await apply({ provider_id: 'aws', cron: '@daily', provider_options: '{}' });

      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain('cron must have five fields');
    });

    it('refuses an unknown provider', async () => {
      const result = await apply({ provider_id: 'lvm', cron: '0 3 * * *', provider_options: '{}' });

      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain('provider_id must be aws, gcp or azure');
    });
  });
});

/** A map of strings as an HCL object literal for -var. */
function toHcl(map: Record<string, string>): string {
  return `{ ${Object.entries(map)
    .map(([k, v]) => `${k} = ${JSON.stringify(v)}`)
    .join(', ')} }`;
}

/** Split a POSIX shell command line of words and single-quoted strings (what the module writes). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  for (const match of line.matchAll(/(?:'[^']*'|\\.|[^\s'\\])+/g)) {
    words.push(
      match[0].replace(
        /'([^']*)'|\\(.)/g,
        (_, quoted: string | undefined, escaped: string) => quoted ?? escaped,
      ),
    );
  }
  return words;
}
