/** The provider a journaled run used, rebuilt by recovery in another process from the journal alone. */
import type { Logger } from '../log.js';
import { loadProvider } from './registry.js';
import { withRetries } from './retry.js';
import type { SnapshotProvider } from './types.js';

/** What a run's journal records of its provider. */
export interface JournaledProvider {
  provider: string | null;
  providerSettings: Record<string, unknown>;
  stateDir?: string;
}

/**
 * Loads the provider on first use only — most recoveries (a cold run, a failed copy) need none — with the
 * retries of a live run.
 */
export function journaledProvider(
  recorded: JournaledProvider,
  stateDir: string,
  log: Logger,
): () => Promise<SnapshotProvider> {
  let provider: SnapshotProvider | undefined;
  return async () => {
    if (!recorded.provider) throw new Error('The journal names no provider');
    provider ??= withRetries(
      await loadProvider(recorded.provider, {
        stateDir: recorded.stateDir ?? stateDir,
        settings: recorded.providerSettings,
      }),
      { log },
    );
    return provider;
  };
}
