/**
 * Fault and timing hooks inside the test VM: a directory of PATH shims, one per tool, each of which
 * sources `DIR/hooks/TOOL` when it exists and then runs the real tool. A hook can fail (`exit 5`), run
 * the real tool first, change the origin just before a copy reads the snapshot, or replace the copy
 * with something that never ends (`exec sleep 600`). Put DIR first on PATH of the run under test.
 */
import type { Vm } from './vm.js';

export interface GuestShims {
  readonly dir: string;
  /** Install `script` as the hook of `tool` (sourced by its shim: `exec`/`exit` end the tool). */
  hook(tool: string, script: string): Promise<void>;
  /** Remove every hook and the call counters: the shims run the real tools again. */
  clear(): Promise<void>;
}

/** Install shims for `tools` (name → real path) in `dir`, in the guest. */
export async function installShims(
  vm: Vm,
  dir: string,
  tools: Readonly<Record<string, string>>,
): Promise<GuestShims> {
  const shim = (tool: string, real: string): string =>
    `#!/bin/sh\nif [ -e ${dir}/hooks/${tool} ]; then . ${dir}/hooks/${tool}; fi\nexec ${real} "$@"\n`;
  await vm.sh(
    [
      `mkdir -p ${dir}/hooks`,
      ...Object.entries(tools).map(([tool, real]) => `cat > ${dir}/${tool} <<'EOF'\n${shim(tool, real)}EOF`),
      `chmod 755 ${dir}/*`,
    ].join('\n'),
  );
  return {
    dir,
    hook: async (tool, script) => {
      await vm.sh(`cat > ${dir}/hooks/${tool} <<'EOF'\n${script}\nEOF`);
    },
    clear: async () => {
      await vm.sh(`rm -f ${dir}/hooks/* ${dir}/count-*`);
    },
  };
}
