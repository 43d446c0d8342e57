/**
 * Test support: makes the procedure modules runnable by a plain `node` child process. Node 20 cannot
 * run TypeScript, and the crash tests need a real process to SIGKILL, so the sources are transpiled
 * (no type check: tsc does that) into a temporary tree that mirrors the repository.
 */
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface ChildTree {
  /** Absolute path of the transpiled child script (`test-support/child.js`). */
  childScript: string;
  remove(): void;
}

/** Transpile `src/errors.ts`, `src/log.ts` and `src/procedure/**` (tests excluded) into a temp dir. */
export function transpileForChild(): ChildTree {
  const out = mkdtempSync(join(tmpdir(), 'dssnap-procedure-child-'));
  const procedureDir = join(repoRoot, 'src', 'procedure');
  const sources = [
    join(repoRoot, 'src', 'errors.ts'),
    join(repoRoot, 'src', 'log.ts'),
    ...listTs(procedureDir).filter((path) => !path.endsWith('.test.ts') && !path.endsWith('transpile.ts')),
  ];
  for (const source of sources) {
    const { outputText } = ts.transpileModule(readFileSync(source, 'utf8'), {
      fileName: source,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    const target = join(out, relative(repoRoot, source)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, outputText);
  }
  writeFileSync(join(out, 'package.json'), '{ "type": "module" }\n');
  // Bare imports (pino) resolve through the project's node_modules.
  symlinkSync(join(repoRoot, 'node_modules'), join(out, 'node_modules'));
  return {
    childScript: join(out, 'src', 'procedure', 'test-support', 'child.js'),
    remove: () => rmSync(out, { recursive: true, force: true }),
  };
}

function listTs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return listTs(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}
