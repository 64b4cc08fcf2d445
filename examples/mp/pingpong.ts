/**
 * Ping-pong between ranks 0 and 1 (round-trip time for 8 B to 1 MiB) and
 * streaming bandwidth, the same measurement as Open MPI's pingpong.c in the
 * peers' baselines. `--json` prints one JSON line (used by npm run bench);
 * `--blocking` makes the round trips with sendSync/receiveSync (as
 * pingpong.c does with MPI_Send/MPI_Recv) instead of the promise API.
 *
 *   switchboard run -n 2 dist/examples/mp/pingpong.js [--json] [--blocking] [iters] [rounds]
 *   switchboard run -n 2 --threads dist/examples/mp/pingpong.js
 *   switchboard run -n 2 --tcp dist/examples/mp/pingpong.js
 */
import { init } from '../../src/mp/index.js';
import { pingpong } from './measure.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const blocking = args.includes('--blocking');
const nums = args.filter((a) => a !== '--json' && a !== '--blocking').map(Number);
if (nums.length > 2 || nums.some((n) => !Number.isInteger(n) || n < 1)) {
  // (every rank checks before init(), so the job ends at once with this message, not with NaN figures)
  process.stderr.write(`usage: pingpong.js [--json] [--blocking] [iters >= 1] [rounds >= 1]; got ${JSON.stringify(args)}\n`);
  process.exit(2);
}
const comm = await init();
if (comm.size < 2) throw new Error('ping-pong needs at least 2 ranks');
const res = await pingpong(comm, {
  sizes: [8, 1024, 64 * 1024, 1024 * 1024],
  bwSizes: [1024 * 1024, 4 * 1024 * 1024],
  iters: nums[0] ?? 2000,
  rounds: nums[1] ?? 5,
  blocking,
});
if (res !== undefined) {
  if (json) process.stdout.write(JSON.stringify(res) + '\n');
  else {
    for (const l of res.latency) process.stdout.write(`ping-pong ${l.size} B over ${res.transport}${blocking ? ' (blocking)' : ''}: ${l.usPerRtt.toFixed(1)} us/RTT\n`);
    for (const b of res.bandwidth) process.stdout.write(`bandwidth ${b.size} B messages over ${res.transport}: ${b.gbPerS.toFixed(3)} GB/s\n`);
  }
}
await comm.close();
