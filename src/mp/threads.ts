/**
 * Ranks as worker threads in this process (`switchboard run --threads`, and
 * the fast way to test). runThreads() builds the port mesh, starts one
 * thread per rank on a module, and resolves with every rank's result; when a
 * rank fails, the others' pending operations fail (PeerLostError) as its
 * ports close, stragglers are stopped after a grace period, and the promise
 * rejects with a RankFailedError naming the rank that failed first.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isAbsolute, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { ArgumentError, SwitchboardError } from '../errors.js';
import type { CommunicatorOptions } from './communicator.js';
import { RankFailedError } from './errors.js';
import { createPortMesh } from './port-link.js';
import { createAttachCount, createRingMesh } from './thread-rings.js';
import { addon } from '../shm/native.js';
import { THREAD_KEY, type ThreadRankData, type ThreadReport } from './thread-data.js';

export interface RunThreadsOptions extends CommunicatorOptions {
  /** Export of the module to call as fn(comm, args) on every rank; without it the module is an app calling init(). */
  export?: string | undefined;
  /** Argument for the export (structured-cloned), or a function of the rank giving it. */
  args?: unknown;
  /** After a rank fails, stop the others that have not ended within this many ms (default 5000). */
  graceMs?: number | undefined;
  /** Arguments the rank threads see as process.argv[2..]. */
  argv?: string[] | undefined;
  /**
   * What carries messages between the threads: shared-memory rings (default
   * when the sb_shm addon is built; the fast path, with polling progress) or
   * MessagePorts.
   */
  transport?: 'ring' | 'port' | undefined;
  /** Data bytes of each ring (power of two, default 1 MiB); two rings per pair of ranks. */
  ringCapacity?: number | undefined;
}

/** Rings when the sb_shm addon loads here, else ports. */
function defaultTransport(): 'ring' | 'port' {
  try {
    addon();
    return 'ring';
  } catch {
    return 'port';
  }
}

/** A module path or URL as a file URL string. */
export function moduleUrl(module: string | URL): string {
  if (module instanceof URL) return module.href;
  if (/^[a-z]+:/.test(module)) return module;
  return pathToFileURL(isAbsolute(module) ? module : resolve(module)).href;
}

/**
 * The compiled entry next to this file; when running from TypeScript sources
 * (tsx, which workers do not inherit) a small bootstrap registers tsx first.
 */
function entry(): { file: URL | string; eval: boolean } {
  const js = new URL('./worker-entry.js', import.meta.url);
  if (existsSync(fileURLToPath(js))) return { file: js, eval: false };
  const ts = new URL('./worker-entry.ts', import.meta.url).href;
  const api = import.meta.resolve('tsx/esm/api');
  return { file: `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(ts)}); })`, eval: true };
}

interface Failure {
  rank: number;
  error: Error;
  secondary: boolean;
}

export async function runThreads<R = unknown>(n: number, module: string | URL, options: RunThreadsOptions = {}): Promise<R[]> {
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new ArgumentError(`the number of ranks must be 1..1024, got ${String(n)}`);
  const { export: exportName, args, graceMs = 5000, argv, transport = defaultTransport(), ringCapacity = 1 << 20, ...commOptions } = options;
  if (transport !== 'ring' && transport !== 'port') throw new ArgumentError(`transport must be 'ring' or 'port', not ${String(transport)}`);
  const mesh = createPortMesh(n);
  const rings = transport === 'ring' ? createRingMesh(n, ringCapacity) : undefined;
  const attached = rings !== undefined ? createAttachCount() : undefined;
  // Over rings a waiting receive polls when every rank has a core, as `switchboard run` does for processes.
  if (rings !== undefined && commOptions.progress === undefined) commOptions.progress = n <= availableParallelism() ? 'poll' : 'yield';
  const url = moduleUrl(module);
  const job = randomBytes(6).toString('hex');
  const results: unknown[] = new Array(n);
  const failures: Failure[] = [];
  const workers: Worker[] = [];
  let grace: NodeJS.Timeout | undefined;
  const exits: Promise<void>[] = [];
  const start = entry();

  const fail = (rank: number, error: Error, secondary: boolean): void => {
    if (failures.some((f) => f.rank === rank)) return;
    failures.push({ rank, error, secondary });
    grace ??= setTimeout(() => {
      for (const w of workers) void w.terminate();
    }, graceMs);
  };

  for (let i = 0; i < n; i++) {
    const ports = mesh[i] as ThreadRankData['ports'];
    const data: ThreadRankData = {
      job,
      rank: i,
      size: n,
      ports,
      rings: rings?.[i],
      attached,
      module: url,
      export: exportName,
      args: typeof args === 'function' ? (args as (r: number) => unknown)(i) : args,
      options: commOptions,
    };
    const w = new Worker(start.file, {
      eval: start.eval,
      workerData: { [THREAD_KEY]: data },
      transferList: ports.filter((p) => p !== null),
      argv: argv ?? [],
    });
    workers.push(w);
    w.on('message', (m: ThreadReport) => {
      if (m?.switchboardMp === 'done') results[i] = m.result;
      else if (m?.switchboardMp === 'error') {
        const e = new SwitchboardError((m.error.code as never) ?? 'EIO', m.error.message);
        e.name = m.error.name;
        if (m.error.stack !== undefined) e.stack = m.error.stack;
        fail(i, e, m.error.lostRank !== undefined);
      }
    });
    w.on('error', (err) => fail(i, err, false));
    exits.push(
      new Promise((done) =>
        w.once('exit', (code) => {
          if (code !== 0) fail(i, new Error(`thread exited with code ${code}`), false);
          done();
        }),
      ),
    );
  }
  await Promise.all(exits);
  if (grace !== undefined) clearTimeout(grace);
  if (failures.length > 0) {
    const first = failures.find((f) => !f.secondary) ?? (failures[0] as Failure);
    throw new RankFailedError(first.rank, `rank ${first.rank} failed: ${first.error.message}`, { cause: first.error });
  }
  return results as R[];
}
