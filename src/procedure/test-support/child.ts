/**
 * Test support: the child process of the crash tests, run by `node` from the transpiled tree
 * (transpile.ts). Modes:
 *   journal STATE RUN COUNT          write COUNT step records, then SIGKILL itself
 *   hold-lock STATE DATA_DIR RUN     take the lock, print `locked`, wait to be killed
 *   procedure STATE WORLD RUN MODE   a procedure over marker files in WORLD; MODE `sigkill` kills
 *                                    itself inside the 4th step, `wait` waits there for a signal
 * It prints one line per milestone on stdout (synchronous on a pipe, so a SIGKILL loses none).
 */
import { appendFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../log.js';
import { archiveJournal, openJournal } from '../journal.js';
import { acquireLock } from '../lock.js';
import { createRunner, installSignalHandlers, runProcedure } from '../runner.js';

const [mode, ...args] = process.argv.slice(2);

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function waitForever(): void {
  setInterval(() => {}, 60_000);
}

function writeJournalThenDie(stateDir: string, runId: string, count: number): void {
  const journal = openJournal(stateDir, runId, { test: 'journal-kill' });
  for (let step = 1; step <= count; step++) {
    journal.append({
      type: 'step-begin',
      step,
      kind: 'marker',
      title: `Step ${step}`,
      intent: { step },
      undoable: true,
    });
    journal.append({ type: 'step-done', step, kind: 'marker', record: { step } });
  }
  say('written');
  process.kill(process.pid, 'SIGKILL');
}

async function runMarkerProcedure(
  stateDir: string,
  world: string,
  runId: string,
  killMode: string,
): Promise<void> {
  const log = silentLogger();
  const { lock } = acquireLock(stateDir, world, runId);
  const journal = openJournal(stateDir, runId, { test: 'procedure', world });
  const runner = createRunner({ runId, journal, log });
  installSignalHandlers(runner, {
    log,
    beforeExit: (summary) => {
      journal.close();
      if (summary.undoFailures.length === 0) archiveJournal(journal.path);
      lock.release();
      say(`stopped ${summary.phase}`);
    },
  });
  const marker = (name: string) => {
    const path = join(world, name);
    return {
      kind: 'marker',
      title: `Create marker ${name}`,
      intent: { path },
      record: () => ({ path }),
      undo: async () => {
        rmSync(path, { force: true });
        appendFileSync(join(world, 'undo.log'), `${name}\n`);
      },
    };
  };
  const summary = await runProcedure(runner, async () => {
    for (const name of ['a', 'b', 'c']) {
      await runner.step({ ...marker(name), run: async () => writeFileSync(join(world, name), name) });
    }
    await runner.step({
      ...marker('d'),
      run: async (signal) => {
        writeFileSync(join(world, 'd'), 'd');
        if (killMode === 'sigkill') {
          say('killing');
          process.kill(process.pid, 'SIGKILL');
        }
        say('waiting');
        // Stands for a long command: keeps the event loop alive until the signal aborts it.
        const timer = setInterval(() => {}, 60_000);
        await new Promise((_, reject) =>
          signal.addEventListener('abort', () => {
            clearInterval(timer);
            reject(signal.reason);
          }),
        );
      },
    });
    await runner.step({ ...marker('e'), run: async () => writeFileSync(join(world, 'e'), 'e') });
  });
  say(`ended ${summary.phase}`);
}

if (mode === 'journal') {
  writeJournalThenDie(args[0]!, args[1]!, Number(args[2]));
} else if (mode === 'hold-lock') {
  acquireLock(args[0]!, args[1]!, args[2]!);
  say('locked');
  waitForever();
} else if (mode === 'procedure') {
  await runMarkerProcedure(args[0]!, args[1]!, args[2]!, args[3]!);
} else {
  process.stderr.write(`Unknown mode ${mode}\n`);
  process.exit(2);
}
