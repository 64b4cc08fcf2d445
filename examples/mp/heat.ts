/**
 * Heat diffusion along a rod (explicit 1-D stencil). Each rank owns a slice
 * of cells plus one ghost cell per side, exchanges its edge cells with its
 * neighbours every step (receives posted before the sends), and an allreduce
 * finds the largest change to stop at a steady state. Rank 0 checks the
 * result against the same computation done sequentially.
 *
 *   switchboard run -n 4 dist/examples/mp/heat.js [cells] [steps]
 */
import { init } from '../../src/mp/index.js';

const comm = await init();
const cells = Number(process.argv[2] ?? 400);
const maxSteps = Number(process.argv[3] ?? 2000);
const alpha = 0.25;
const { rank, size } = comm;

/** The initial temperature: a hot spot in the middle, cold ends held at 0. */
const initial = (i: number): number => (Math.abs(i - cells / 2) < cells / 10 ? 100 : 0);

const lo = Math.floor((rank * cells) / size);
const hi = Math.floor(((rank + 1) * cells) / size);
let u = new Float64Array(hi - lo + 2); // [ghost, cells lo..hi-1, ghost]
let next = new Float64Array(u.length);
for (let i = lo; i < hi; i++) u[i - lo + 1] = initial(i);
const left = rank > 0 ? rank - 1 : -1;
const right = rank < size - 1 ? rank + 1 : -1;

let steps = 0;
for (; steps < maxSteps; steps++) {
  // Halo exchange: send my first cell left and my last cell right.
  const m = u.length - 2;
  // Receives are posted first and sends never wait for the receiver, so no ordering can deadlock.
  const fromLeft = left >= 0 ? comm.receive<Float64Array>({ from: left, tag: 1 }) : undefined;
  const fromRight = right >= 0 ? comm.receive<Float64Array>({ from: right, tag: 2 }) : undefined;
  if (left >= 0) await comm.send(left, new Float64Array([u[1]!]), { tag: 2 });
  if (right >= 0) await comm.send(right, new Float64Array([u[m]!]), { tag: 1 });
  u[0] = fromLeft ? (await fromLeft).data[0]! : 0;
  u[m + 1] = fromRight ? (await fromRight).data[0]! : 0;
  let change = 0;
  for (let i = 1; i <= m; i++) {
    next[i] = u[i]! + alpha * (u[i - 1]! - 2 * u[i]! + u[i + 1]!);
    change = Math.max(change, Math.abs(next[i]! - u[i]!));
  }
  [u, next] = [next, u];
  if (steps % 50 === 49) {
    const worst = await comm.allreduce(new Float64Array([change]), 'max');
    if (worst[0]! < 1e-3) {
      steps++;
      break;
    }
  }
}

const field = await comm.gatherv(u.subarray(1, u.length - 1), { root: 0 });
if (rank === 0 && field) {
  // The same steps, sequentially.
  let s = Float64Array.from({ length: cells + 2 }, (_, i) => (i === 0 || i === cells + 1 ? 0 : initial(i - 1)));
  let t = new Float64Array(cells + 2);
  for (let k = 0; k < steps; k++) {
    for (let i = 1; i <= cells; i++) t[i] = s[i]! + alpha * (s[i - 1]! - 2 * s[i]! + s[i + 1]!);
    [s, t] = [t, s];
  }
  let err = 0;
  for (let i = 0; i < cells; i++) err = Math.max(err, Math.abs(field.data[i]! - s[i + 1]!));
  if (err > 1e-9) throw new Error(`parallel and sequential fields differ by ${err}`);
  const heat = field.data.reduce((a, b) => a + b, 0);
  process.stdout.write(`heat: ${cells} cells, ${size} ranks, ${steps} steps, total heat ${heat.toFixed(3)}, matches sequential\n`);
}
await comm.close();
