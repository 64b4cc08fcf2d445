/**
 * A pool of worker threads, each exposing the same interface over its
 * MessagePort; the pool hands each job to the least busy worker. Large
 * buffers are moved to the worker with transfer() instead of being copied.
 *
 *   npx tsx examples/rpc/worker-pool.ts
 */
import { createHash } from 'node:crypto';
import { cpus } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { close, connect, expose, transfer, type Remote } from '../../src/rpc/index.js';

export interface Hasher {
  sha256(data: Uint8Array): string;
  /** Count primes below n, the slow way: CPU work the main thread should not do. */
  primesBelow(n: number): number;
}

const hasher: Hasher = {
  sha256: (data) => createHash('sha256').update(data).digest('hex'),
  primesBelow(n) {
    let count = 0;
    for (let i = 2; i < n; i++) {
      let prime = true;
      for (let d = 2; d * d <= i; d++) if (i % d === 0) { prime = false; break; }
      if (prime) count++;
    }
    return count;
  },
};

export class Pool<T> {
  private readonly busy: number[];
  private constructor(
    private readonly workers: Worker[],
    private readonly stubs: Remote<T>[],
  ) {
    this.busy = stubs.map(() => 0);
  }

  static async start<T>(file: string, size: number): Promise<Pool<T>> {
    const workers = Array.from({ length: size }, () => startWorker(file));
    const stubs = await Promise.all(workers.map((w) => connect<T>(w)));
    return new Pool(workers, stubs);
  }

  /** Run `job` on the least busy worker. */
  async run<R>(job: (worker: Remote<T>) => Promise<R>): Promise<R> {
    let best = 0;
    for (let i = 1; i < this.busy.length; i++) if ((this.busy[i] as number) < (this.busy[best] as number)) best = i;
    this.busy[best] = (this.busy[best] as number) + 1;
    try {
      return await job(this.stubs[best] as Remote<T>);
    } finally {
      this.busy[best] = (this.busy[best] as number) - 1;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.stubs.map((s) => close(s as object)));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** This file as a worker (from source, tsx's loader is registered in the worker first). */
function startWorker(file: string): Worker {
  if (!file.endsWith('.ts')) return new Worker(file);
  return new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(pathToFileURL(file).href)}); })`, { eval: true });
}

if (!isMainThread && parentPort) {
  await expose(hasher, { on: parentPort });
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const pool = await Pool.start<Hasher>(fileURLToPath(import.meta.url), Math.max(2, cpus().length));
  try {
    const t0 = performance.now();
    const counts = await Promise.all([20_000, 40_000, 60_000, 80_000].map((n) => pool.run((w) => w.primesBelow(n))));
    console.log('primes below 20k/40k/60k/80k:', counts.join(', '), `(${(performance.now() - t0).toFixed(0)} ms)`);
    const big = new Uint8Array(8 * 1024 * 1024).fill(42);
    const digest = await pool.run((w) => w.sha256(transfer(big, [big.buffer as ArrayBuffer])));
    console.log(`sha256 of 8 MiB: ${digest.slice(0, 16)}..., moved, not copied (byteLength here now ${big.byteLength})`);
  } finally {
    await pool.close();
  }
}
