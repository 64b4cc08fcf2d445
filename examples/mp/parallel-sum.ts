/**
 * Parallel sum: the root scatters an array, every rank sums its part, and a
 * reduce adds the partial sums at the root.
 *
 *   switchboard run -n 4 dist/examples/mp/parallel-sum.js [N]
 *   switchboard run -n 4 --threads dist/examples/mp/parallel-sum.js [N]
 */
import { init } from '../../src/mp/index.js';

const comm = await init();
const perRank = Math.ceil(Number(process.argv[2] ?? 1_000_000) / comm.size);
const n = perRank * comm.size;

// Rank 0 owns the data: 1, 2, ..., n.
let all: Float64Array | undefined;
if (comm.rank === 0) {
  all = new Float64Array(n);
  for (let i = 0; i < n; i++) all[i] = i + 1;
}
const mine = await comm.scatter(all, { root: 0 });
let partial = 0;
for (const x of mine) partial += x;
const total = await comm.reduce(new Float64Array([partial]), 'sum', { root: 0 });
if (comm.rank === 0) {
  const expected = (n * (n + 1)) / 2;
  if (total?.[0] !== expected) throw new Error(`sum is ${total?.[0]}, expected ${expected}`);
  process.stdout.write(`sum of 1..${n} over ${comm.size} ranks (${comm.transport}) = ${total[0]}\n`);
}
await comm.close();
