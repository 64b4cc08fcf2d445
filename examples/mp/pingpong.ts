/**
 * Ping-pong between ranks 0 and 1: round-trip time for several sizes, like
 * the Open MPI pingpong in the peers' benchmarks.
 *
 *   switchboard run -n 2 dist/examples/mp/pingpong.js [iterations]
 *   switchboard run -n 2 --threads dist/examples/mp/pingpong.js
 */
import { performance } from 'node:perf_hooks';
import { init } from '../../src/mp/index.js';

const comm = await init();
if (comm.size < 2) throw new Error('ping-pong needs at least 2 ranks');
const iters = Number(process.argv[2] ?? 1000);

for (const size of [8, 1024, 64 * 1024, 1024 * 1024]) {
  const buf = new Uint8Array(size);
  const n = size >= 1024 * 1024 ? Math.max(5, iters / 50) : size >= 65536 ? Math.max(10, iters / 10) : iters;
  await comm.barrier();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    if (comm.rank === 0) {
      await comm.send(1, buf, { tag: 1 });
      await comm.receive({ from: 1, tag: 2, buffer: buf });
    } else if (comm.rank === 1) {
      await comm.receive({ from: 0, tag: 1, buffer: buf });
      await comm.send(0, buf, { tag: 2 });
    }
  }
  const us = ((performance.now() - t0) * 1000) / n;
  if (comm.rank === 0) process.stdout.write(`ping-pong ${size} B over ${comm.transport}: ${us.toFixed(1)} us/RTT\n`);
}
await comm.close();
