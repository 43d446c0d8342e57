/**
 * Loop devices, mounts and temp dirs must not outlive the bench, even when it is interrupted: every
 * resource is disposed in a `finally`, and Ctrl-C disposes whatever is still open before exiting.
 */

export interface Disposable {
  dispose(): Promise<void>;
}

const open = new Set<Disposable>();

/** Use `resource`, then dispose it, whatever happens. On SIGINT/SIGTERM meanwhile, it is disposed too. */
export async function withResource<T extends Disposable, R>(
  resource: T,
  use: (resource: T) => Promise<R>,
): Promise<R> {
  open.add(resource);
  try {
    return await use(resource);
  } finally {
    open.delete(resource);
    await resource.dispose();
  }
}

/** On the first SIGINT/SIGTERM, dispose every open resource (children got the signal too), then exit 130. */
export function disposeOnInterrupt(): void {
  const handler = async (signal: NodeJS.Signals): Promise<void> => {
    process.stderr.write(`\n${signal}: cleaning up ${open.size} bench resource(s)...\n`);
    // dssnap children received the same signal and undo their own runs; give them a moment.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    for (const resource of open) await resource.dispose().catch(() => undefined);
    process.exit(130);
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}
