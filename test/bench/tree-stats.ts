/** Sizes of trees on disk, from du and find (fast, and what a user would run to check). */
import { run } from '../../src/host/exec.js';

/** `du -s -B1 A B…` in one call: a hard-linked inode is counted once, in the first directory holding it. */
export async function diskUsage(...dirs: string[]): Promise<number[]> {
  const { stdout } = await run('du', ['-s', '-B1', ...dirs]);
  return stdout
    .trim()
    .split('\n')
    .map((line) => Number(line.split(/\s+/)[0]));
}

/** Blocks allocated to the directories of a tree, in bytes. */
export async function directoryBytes(root: string): Promise<number> {
  return sumLines(await run('find', [root, '-type', 'd', '-printf', '%b\\n']), 512);
}

/** Number and apparent bytes of the regular files of a tree. */
export async function treeTotals(root: string): Promise<{ files: number; bytes: number }> {
  const result = await run('find', [root, '-type', 'f', '-printf', '%s\\n']);
  return { files: result.stdout.trim().split('\n').length, bytes: sumLines(result, 1) };
}

function sumLines({ stdout }: { stdout: string }, unit: number): number {
  return stdout
    .trim()
    .split('\n')
    .reduce((sum, value) => sum + Number(value) * unit, 0);
}
