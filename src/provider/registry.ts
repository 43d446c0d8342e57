/**
 * The provider registry: one line per provider, each imported lazily so that a cloud SDK loads only
 * when its provider is used (`dssnap --help` stays fast). Adding a provider = a folder under
 * `providers/` + one line here; a test fails when the two disagree.
 */
import { DssnapError } from '../errors.js';
import { findMount } from './find-mount.js';
import type { ProviderFactory, ProviderOptions, SnapshotProvider } from './types.js';

type ProviderModule = { factory: ProviderFactory };

const factories = {
  aws: () => import('../../providers/aws/index.js'),
  azure: () => import('../../providers/azure/index.js'),
  btrfs: () => import('../../providers/btrfs/index.js'),
  fake: () => import('../../providers/fake/index.js'),
  gcp: () => import('../../providers/gcp/index.js'),
  lvm: () => import('../../providers/lvm/index.js'),
} satisfies Record<string, () => Promise<ProviderModule>>;

export type ProviderId = keyof typeof factories;

/** The registered provider ids, sorted. */
export function providerIds(): ProviderId[] {
  return (Object.keys(factories) as ProviderId[]).sort();
}

/** True when `id` names a registered provider. */
export function isProviderId(id: string): id is ProviderId {
  return Object.hasOwn(factories, id);
}

/**
 * Import the provider's module and build it with `options`. Throws UNKNOWN_PROVIDER listing the valid
 * ids, or whatever the factory throws for bad settings (CONFIG_INVALID). Each call builds a new one.
 */
export async function loadProvider(id: string, options: ProviderOptions): Promise<SnapshotProvider> {
  if (!isProviderId(id)) {
    throw new DssnapError(
      'UNKNOWN_PROVIDER',
      `Unknown provider '${id}': must be one of: ${providerIds().join(', ')}`,
      {
        details: { provider: id, valid: providerIds() },
      },
    );
  }
  const { factory } = await factories[id]();
  return factory.create(options);
}

/**
 * The provider that applies to the filesystem holding `dataDir`: `btrfs` on btrfs. Throws UNSUPPORTED
 * (with a hint) when none applies, NOT_FOUND when the path does not exist. Changes nothing.
 */
export async function detectProvider(dataDir: string): Promise<ProviderId> {
  const mount = await findMount(dataDir);
  if (mount.fsType === 'btrfs') return 'btrfs';
  throw new DssnapError(
    'UNSUPPORTED',
    `No snapshot provider applies to '${dataDir}': it is on a ${mount.fsType} filesystem (${mount.source || 'unknown device'} mounted at ${mount.target})`,
    {
      hint: `Use --mode cold (stop DSS, copy, start), or choose a provider with --provider (one of: ${providerIds().join(', ')}).`,
      details: { dataDir, fsType: mount.fsType, mountPoint: mount.target, device: mount.device },
    },
  );
}
