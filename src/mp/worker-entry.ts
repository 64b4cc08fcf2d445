/**
 * The start file of a rank thread: imports the rank's module, calls the
 * requested export with the world communicator (or lets an app module call
 * init() itself), finalizes, and reports the result or the error to the
 * parent.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { init } from './init.js';
import { getWorld } from './world.js';
import { THREAD_KEY, type ThreadRankData, type ThreadReport } from './thread-data.js';
import { PeerLostError } from './errors.js';

const data = (workerData as Record<string, ThreadRankData>)[THREAD_KEY] as ThreadRankData;

function report(r: ThreadReport): void {
  parentPort?.postMessage(r);
}

try {
  const mod = (await import(data.module)) as Record<string, unknown>;
  let result: unknown;
  if (data.export !== undefined) {
    const fn = mod[data.export];
    if (typeof fn !== 'function') throw new TypeError(`${data.module} has no exported function "${data.export}"`);
    const comm = await init();
    result = await (fn as (c: unknown, a: unknown) => unknown)(comm, data.args);
  }
  await getWorld()?.close();
  report({ switchboardMp: 'done', result });
} catch (err) {
  const e = err as Error & { code?: string };
  report({
    switchboardMp: 'error',
    error: { name: e?.name ?? 'Error', message: e?.message ?? String(err), code: e?.code, stack: e?.stack, lostRank: err instanceof PeerLostError ? err.rank : undefined },
  });
  process.exitCode = 1;
  // Leave at once: peers learn of the failure when this thread's ports close.
  process.exit(1);
}
