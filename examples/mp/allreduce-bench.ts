/**
 * Allreduce latency from 8 B to 4 MiB (sum of Float64Array), beside a plain
 * exchange of the same bytes between rank pairs; one JSON line from rank 0.
 *
 *   switchboard run -n 4 dist/examples/mp/allreduce-bench.js [iters] [rounds]
 */
import { init } from '../../src/mp/index.js';
import { allreduce } from './measure.js';

const [iters = 1000, rounds = 5] = process.argv.slice(2).map(Number);
const comm = await init();
const res = await allreduce(comm, { sizes: [8, 1024, 64 * 1024, 1024 * 1024, 4 * 1024 * 1024], iters, rounds });
if (res !== undefined) process.stdout.write(JSON.stringify(res) + '\n');
await comm.close();
