/**
 * Collective operations with the algorithms MPI libraries use (MPICH's
 * choices): dissemination barrier; binomial-tree bcast, scatter, gather and
 * reduce; scatter + ring allgather for large bcasts; recursive doubling for
 * small allgather/allreduce (non-power-of-two sizes fold the extra ranks in
 * first); ring reduce-scatter + ring allgather for large allreduce.
 *
 * Every collective runs on the communicator's hidden collective context.
 * Ranks must call collectives in the same order (as in MPI). A receive from a
 * given peer takes that peer's next collective message whatever its tag and
 * then checks the tag, kind and length: a rank that called a different
 * collective, or passed a different count, surfaces as a
 * CollectiveMismatchError instead of a hang. Mismatches that produce no
 * message at all (a rank that never calls) end with the operation's timeout.
 */
import { ArgumentError } from '../errors.js';
import { ANY, type Msg } from './engine.js';
import { CollectiveMismatchError } from './errors.js';
import { applyOp, checkOp, isCommutative, type Op } from './ops.js';
import {
  KIND_VALUE,
  ctorOf,
  decodePayload,
  dtypeOf,
  encodePayload,
  isTypedArray,
  typedView,
  type Encoded,
  type TypedArray,
} from './payload.js';
import type { Communicator, OpOptions } from './communicator.js';
import { CollTag } from './tags.js';

type C = Communicator;

const TAG_NAMES: Record<number, string> = Object.fromEntries(Object.entries(CollTag).map(([k, v]) => [v, k]));

function enc(a: TypedArray): Encoded {
  return encodePayload(a);
}

function copyOf<T extends TypedArray>(a: T): T {
  const out = new (ctorOf(dtypeOf(a)))(a.length) as T;
  out.set(a as never);
  return out;
}

function alloc<T extends TypedArray>(like: T, n: number): T {
  return new (ctorOf(dtypeOf(like)))(n) as T;
}

/** The next collective message from `from`; throws if it belongs to another collective. */
async function recvExpect(c: C, from: number, tag: CollTag, o: OpOptions | undefined, what: string): Promise<Msg> {
  const m = await c.crecv(from, ANY, o);
  if (m.tag !== tag) {
    throw new CollectiveMismatchError(
      `${what}: rank ${from} is in a different collective or used a different algorithm (sent ${TAG_NAMES[m.tag] ?? m.tag}, expected ${TAG_NAMES[tag]}); check that all ranks call the same collectives with the same counts`,
    );
  }
  return m;
}

function asTyped<T extends TypedArray>(m: Msg, like: T, from: number, what: string, expectLen?: number): T {
  const dt = dtypeOf(like);
  if (m.kind === KIND_VALUE || m.dtype !== dt) {
    throw new CollectiveMismatchError(`${what}: rank ${from} passed ${m.kind === KIND_VALUE ? 'a value' : `element type ${ctorOf(m.dtype).name}`} where this rank passed ${like.constructor.name}`);
  }
  const el = like.BYTES_PER_ELEMENT;
  if (m.bytes.byteLength % el !== 0 || (expectLen !== undefined && m.bytes.byteLength !== expectLen * el)) {
    throw new CollectiveMismatchError(`${what}: rank ${from} sent ${m.bytes.byteLength / el} elements, expected ${expectLen ?? 'a whole number of'}; counts differ between ranks`);
  }
  return typedView(dt, m.bytes) as T;
}

function asValue(m: Msg, from: number, what: string): unknown {
  if (m.kind !== KIND_VALUE) throw new CollectiveMismatchError(`${what}: rank ${from} passed a typed array where this rank passed a value`);
  return decodePayload(m.kind, m.dtype, m.bytes);
}

/** Send and receive in one step (both awaited, so neither rejection goes unhandled). */
async function exchange(c: C, to: number, data: Encoded, from: number, tag: CollTag, o: OpOptions | undefined, what: string, owned = false): Promise<Msg> {
  const [, m] = await Promise.all([c.csend(to, data, tag, owned), recvExpect(c, from, tag, o, what)]);
  return m;
}

// ---------------------------------------------------------------- barrier

export async function barrier(c: C, o: OpOptions | undefined): Promise<void> {
  const n = c.size;
  const r = c.rank;
  for (let k = 1; k < n; k <<= 1) {
    await exchange(c, (r + k) % n, { kind: 0, dtype: 0, bytes: new Uint8Array(0) }, (r - k + n) % n, CollTag.Barrier, o, 'barrier');
  }
}

// ------------------------------------------------------------------ bcast

export async function bcast<T>(c: C, data: T, root: number, o: OpOptions | undefined): Promise<T> {
  const n = c.size;
  if (n === 1) return data;
  const r = c.rank;
  const vr = (r - root + n) % n;
  const abs = (v: number): number => (v + root) % n;
  const typed = isTypedArray(data);
  if (typed && data.byteLength >= c.options.bcastLargeBytes && n > 2 && data.length >= n) {
    return (await bcastLarge(c, data, root, o)) as T;
  }
  if (r !== root && data !== undefined && !typed) throw new ArgumentError('bcast: non-root ranks pass undefined (or a typed array to fill)');
  let mask = 1;
  let payload: Encoded;
  let result: T = data;
  if (r === root) {
    payload = encodePayload(data);
    while (mask < n) mask <<= 1;
  } else {
    while (mask < n && (vr & mask) === 0) mask <<= 1;
    const parent = abs(vr - mask);
    const m = await c.crecv(parent, ANY, o);
    if (m.tag === CollTag.BcastScatter) {
      throw new CollectiveMismatchError(`bcast: the root sent a large typed array but this rank passed ${typed ? 'a smaller array' : 'undefined'}; pass an array of the root's length`);
    }
    if (m.tag !== CollTag.Bcast) throw new CollectiveMismatchError(`bcast: rank ${parent} is in a different collective (${TAG_NAMES[m.tag] ?? m.tag})`);
    payload = { kind: m.kind as Encoded['kind'], dtype: m.dtype, bytes: m.bytes };
    if (typed) {
      if (m.kind === KIND_VALUE || m.bytes.byteLength !== data.byteLength) {
        throw new CollectiveMismatchError(`bcast: root sent ${m.bytes.byteLength} bytes, this rank passed an array of ${data.byteLength} bytes`);
      }
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(m.bytes);
    } else {
      result = decodePayload(m.kind, m.dtype, m.bytes) as T;
    }
  }
  mask >>= 1;
  const sends: Promise<void>[] = [];
  for (; mask > 0; mask >>= 1) if (vr + mask < n) sends.push(c.csend(abs(vr + mask), payload, CollTag.Bcast));
  await Promise.all(sends);
  return result;
}

/** Binomial scatter of n blocks, then a ring allgather (van de Geijn), in place. */
async function bcastLarge<T extends TypedArray>(c: C, data: T, root: number, o: OpOptions | undefined): Promise<T> {
  const n = c.size;
  const vr = (c.rank - root + n) % n;
  const abs = (v: number): number => (v + root) % n;
  const N = data.length;
  const cs = Math.ceil(N / n);
  const lo = (k: number): number => Math.min(N, k * cs);
  let mask = 1;
  if (vr !== 0) {
    while ((vr & mask) === 0) mask <<= 1;
    const from = abs(vr - mask);
    const m = await c.crecv(from, ANY, o);
    if (m.tag !== CollTag.BcastScatter) {
      throw new CollectiveMismatchError(`bcast: the root sent ${m.bytes.byteLength} bytes with the small-message algorithm but this rank passed ${data.byteLength} bytes; lengths differ`);
    }
    data.set(asTyped(m, data, from, 'bcast', lo(vr + mask) - lo(vr)) as never, lo(vr));
  } else {
    while (mask < n) mask <<= 1;
  }
  const sends: Promise<void>[] = [];
  for (mask >>= 1; mask > 0; mask >>= 1) {
    if (vr + mask < n) sends.push(c.csend(abs(vr + mask), enc(data.subarray(lo(vr + mask), lo(vr + 2 * mask))), CollTag.BcastScatter));
  }
  await Promise.all(sends);
  const left = abs((vr - 1 + n) % n);
  const right = abs((vr + 1) % n);
  for (let s = 0; s < n - 1; s++) {
    const si = (vr - s + n) % n;
    const ri = (vr - s - 1 + n) % n;
    const m = await exchange(c, right, enc(data.subarray(lo(si), lo(si + 1))), left, CollTag.BcastRing, o, 'bcast');
    data.set(asTyped(m, data, left, 'bcast', lo(ri + 1) - lo(ri)) as never, lo(ri));
  }
  return data;
}

// ---------------------------------------------------------------- scatter

export async function scatter(c: C, data: unknown, root: number, o: OpOptions | undefined): Promise<unknown> {
  const n = c.size;
  const r = c.rank;
  const vr = (r - root + n) % n;
  const abs = (v: number): number => (v + root) % n;
  // What this rank holds: the blocks of its subtree, in relative order.
  let typedBlocks: TypedArray | undefined;
  let valueBlocks: unknown[] | undefined;
  let per = 0;
  let mask = 1;
  if (r === root) {
    if (isTypedArray(data)) {
      if (data.length % n !== 0) throw new ArgumentError(`scatter: ${data.length} elements do not split evenly over ${n} ranks; use scatterv`);
      per = data.length / n;
      if (root === 0) typedBlocks = data;
      else {
        typedBlocks = alloc(data, data.length);
        typedBlocks.set(data.subarray(root * per) as never, 0);
        typedBlocks.set(data.subarray(0, root * per) as never, (n - root) * per);
      }
    } else if (Array.isArray(data)) {
      if (data.length !== n) throw new ArgumentError(`scatter: the root passes ${n} values (one per rank), got ${data.length}`);
      valueBlocks = Array.from({ length: n }, (_, k) => data[abs(k)]);
    } else {
      throw new ArgumentError('scatter: the root passes a typed array or an array of values');
    }
    while (mask < n) mask <<= 1;
  } else {
    while (mask < n && (vr & mask) === 0) mask <<= 1;
    const parent = abs(vr - mask);
    const m = await recvExpect(c, parent, CollTag.Scatter, o, 'scatter');
    const cnt = Math.min(mask, n - vr);
    if (m.kind === KIND_VALUE) {
      valueBlocks = decodePayload(m.kind, m.dtype, m.bytes) as unknown[];
    } else {
      typedBlocks = typedView(m.dtype, m.bytes);
      if (typedBlocks.length % cnt !== 0) throw new CollectiveMismatchError('scatter: received block does not split over the subtree');
      per = typedBlocks.length / cnt;
    }
  }
  const sends: Promise<void>[] = [];
  for (mask >>= 1; mask > 0; mask >>= 1) {
    const child = vr + mask;
    if (child >= n) continue;
    const cnt = Math.min(mask, n - child);
    const off = child - vr;
    const payload = typedBlocks
      ? enc(typedBlocks.subarray(off * per, (off + cnt) * per))
      : encodePayload((valueBlocks as unknown[]).slice(off, off + cnt));
    sends.push(c.csend(abs(child), payload, CollTag.Scatter));
  }
  await Promise.all(sends);
  if (typedBlocks) return typedBlocks.slice(0, per);
  return (valueBlocks as unknown[])[0];
}

export async function scatterv(
  c: C,
  data: TypedArray | undefined,
  root: number,
  counts: readonly number[] | undefined,
  displs: readonly number[] | undefined,
  o: OpOptions | undefined,
): Promise<TypedArray> {
  const n = c.size;
  if (c.rank !== root) {
    const m = await recvExpect(c, root, CollTag.Scatterv, o, 'scatterv');
    if (m.kind === KIND_VALUE) throw new CollectiveMismatchError('scatterv: expected a typed array');
    return typedView(m.dtype, m.bytes);
  }
  if (!isTypedArray(data)) throw new ArgumentError('scatterv: the root passes a typed array');
  if (!counts || counts.length !== n) throw new ArgumentError(`scatterv: the root passes counts for all ${n} ranks`);
  const d: number[] = [];
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const cnt = counts[i] as number;
    if (!Number.isInteger(cnt) || cnt < 0) throw new ArgumentError(`scatterv: counts[${i}] must be a non-negative integer`);
    const off = displs ? (displs[i] as number) : acc;
    if (!Number.isInteger(off) || off < 0 || off + cnt > data.length) throw new ArgumentError(`scatterv: block ${i} (${off}+${cnt}) lies outside the ${data.length} elements`);
    d.push(off);
    acc += cnt;
  }
  const sends: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    if (i !== root) sends.push(c.csend(i, enc(data.subarray(d[i] as number, (d[i] as number) + (counts[i] as number))), CollTag.Scatterv));
  }
  await Promise.all(sends);
  return data.slice(d[root] as number, (d[root] as number) + (counts[root] as number));
}

// ----------------------------------------------------------------- gather

export async function gather(c: C, data: unknown, root: number, o: OpOptions | undefined): Promise<unknown> {
  const n = c.size;
  const r = c.rank;
  const vr = (r - root + n) % n;
  const abs = (v: number): number => (v + root) % n;
  const typed = isTypedArray(data);
  const sub = vr === 0 ? n : Math.min(vr & -vr, n - vr);
  const per = typed ? data.length : 0;
  const buf: TypedArray | undefined = typed ? alloc(data, sub * per) : undefined;
  const vals: unknown[] | undefined = typed ? undefined : [data];
  if (buf) buf.set(data as never, 0);
  for (let mask = 1; mask < n; mask <<= 1) {
    if (vr & mask) {
      await c.csend(abs(vr - mask), buf ? enc(buf) : encodePayload(vals), CollTag.Gather, buf !== undefined);
      return undefined;
    }
    const child = vr + mask;
    if (child >= n) continue;
    const cnt = Math.min(mask, n - child);
    const from = abs(child);
    const m = await recvExpect(c, from, CollTag.Gather, o, 'gather');
    if (buf) buf.set(asTyped(m, data as TypedArray, from, 'gather', cnt * per) as never, mask * per);
    else {
      const got = asValue(m, from, 'gather') as unknown[];
      if (!Array.isArray(got) || got.length !== cnt) throw new CollectiveMismatchError('gather: malformed subtree block');
      (vals as unknown[]).push(...got);
    }
  }
  if (buf) {
    if (root === 0) return buf;
    const out = alloc(buf, buf.length);
    out.set(buf.subarray(0, (n - root) * per) as never, root * per);
    out.set(buf.subarray((n - root) * per) as never, 0);
    return out;
  }
  return Array.from({ length: n }, (_, i) => (vals as unknown[])[(i - root + n) % n]);
}

export async function gatherv(c: C, data: TypedArray, root: number, o: OpOptions | undefined): Promise<{ data: TypedArray; counts: number[]; displs: number[] } | undefined> {
  if (!isTypedArray(data)) throw new ArgumentError('gatherv: every rank passes a typed array');
  const n = c.size;
  if (c.rank !== root) {
    await c.csend(root, enc(data), CollTag.Gatherv);
    return undefined;
  }
  const parts: TypedArray[] = [];
  const got = await Promise.all(
    Array.from({ length: n }, (_, i) => (i === root ? Promise.resolve(undefined) : recvExpect(c, i, CollTag.Gatherv, o, 'gatherv'))),
  );
  for (let i = 0; i < n; i++) {
    const m = got[i];
    parts.push(m === undefined ? data : asTyped(m, data, i, 'gatherv'));
  }
  const counts = parts.map((p) => p.length);
  const displs: number[] = [];
  let total = 0;
  for (const k of counts) {
    displs.push(total);
    total += k;
  }
  const out = alloc(data, total);
  parts.forEach((p, i) => out.set(p as never, displs[i] as number));
  return { data: out, counts, displs };
}

// -------------------------------------------------------------- allgather

export async function allgather(c: C, data: unknown, o: OpOptions | undefined): Promise<unknown> {
  const n = c.size;
  const r = c.rank;
  const left = (r - 1 + n) % n;
  const right = (r + 1) % n;
  if (!isTypedArray(data)) {
    const items: unknown[] = new Array(n);
    items[r] = data;
    let carry = encodePayload(data);
    for (let s = 0; s < n - 1; s++) {
      const m = await exchange(c, right, carry, left, CollTag.AllgatherRing, o, 'allgather', false);
      items[(r - s - 1 + n) % n] = asValue(m, left, 'allgather');
      carry = { kind: KIND_VALUE, dtype: 0, bytes: m.bytes };
    }
    return items;
  }
  const per = data.length;
  const out = alloc(data, n * per);
  out.set(data as never, r * per);
  if ((n & (n - 1)) === 0 && data.byteLength * n <= 512 * 1024) {
    for (let mask = 1; mask < n; mask <<= 1) {
      const partner = r ^ mask;
      const mine = r & ~(mask - 1);
      const theirs = partner & ~(mask - 1);
      const m = await exchange(c, partner, enc(out.subarray(mine * per, (mine + mask) * per)), partner, CollTag.Allgather, o, 'allgather');
      out.set(asTyped(m, data, partner, 'allgather', mask * per) as never, theirs * per);
    }
    return out;
  }
  for (let s = 0; s < n - 1; s++) {
    const si = (r - s + n) % n;
    const ri = (r - s - 1 + n) % n;
    const m = await exchange(c, right, enc(out.subarray(si * per, (si + 1) * per)), left, CollTag.AllgatherRing, o, 'allgather');
    out.set(asTyped(m, data, left, 'allgather', per) as never, ri * per);
  }
  return out;
}

// ----------------------------------------------------------------- reduce

function checkReduceInput(data: unknown, op: Op, what: string): asserts data is TypedArray {
  if (!isTypedArray(data)) throw new ArgumentError(`${what}: data must be a typed array`);
  checkOp(op, data);
}

export async function reduce(c: C, data: TypedArray, op: Op, root: number, o: OpOptions | undefined): Promise<TypedArray | undefined> {
  checkReduceInput(data, op, 'reduce');
  const n = c.size;
  const r = c.rank;
  const N = data.length;
  let acc = copyOf(data);
  if (n === 1) return acc;
  // Commutative ops use the tree rooted at root; ordered ones reduce in rank order to 0, then forward.
  const comm = isCommutative(op);
  const base = comm ? root : 0;
  const vr = (r - base + n) % n;
  const abs = (v: number): number => (v + base) % n;
  let mine = true;
  for (let mask = 1; mask < n; mask <<= 1) {
    if (vr & mask) {
      await c.csend(abs(vr & ~mask), enc(acc), CollTag.Reduce, true);
      mine = false;
      break;
    }
    const src = vr | mask;
    if (src >= n) continue;
    const m = await recvExpect(c, abs(src), CollTag.Reduce, o, 'reduce');
    applyOp(op, acc, asTyped(m, data, abs(src), 'reduce', N));
  }
  if (!comm && root !== 0) {
    if (r === 0) {
      await c.csend(root, enc(acc), CollTag.ReduceForward, true);
      return undefined;
    }
    if (r === root) {
      const m = await recvExpect(c, 0, CollTag.ReduceForward, o, 'reduce');
      acc = asTyped(m, data, 0, 'reduce', N);
      return acc;
    }
    return undefined;
  }
  return mine && r === root ? acc : undefined;
}

// -------------------------------------------------------------- allreduce

export async function allreduce(c: C, data: TypedArray, op: Op, o: OpOptions | undefined): Promise<TypedArray> {
  checkReduceInput(data, op, 'allreduce');
  const n = c.size;
  const N = data.length;
  if (n === 1) return copyOf(data);
  if (!isCommutative(op)) {
    const red = await reduce(c, data, op, 0, o);
    return bcast(c, red ?? alloc(data, N), 0, o);
  }
  if (n > 2 && data.byteLength >= c.options.allreduceRingBytes && N >= n) return allreduceRing(c, data, op, o);
  return allreduceDoubling(c, data, op, o);
}

async function allreduceDoubling(c: C, data: TypedArray, op: Op, o: OpOptions | undefined): Promise<TypedArray> {
  const n = c.size;
  const r = c.rank;
  const N = data.length;
  let acc = copyOf(data);
  let pof2 = 1;
  while (pof2 * 2 <= n) pof2 *= 2;
  const rem = n - pof2;
  let newrank: number;
  if (r < 2 * rem) {
    if (r % 2 === 0) {
      await c.csend(r + 1, enc(acc), CollTag.Allreduce);
      newrank = -1;
    } else {
      const m = await recvExpect(c, r - 1, CollTag.Allreduce, o, 'allreduce');
      const lower = asTyped(m, data, r - 1, 'allreduce', N);
      applyOp(op, lower, acc);
      acc = lower;
      newrank = r >> 1;
    }
  } else {
    newrank = r - rem;
  }
  if (newrank >= 0) {
    for (let mask = 1; mask < pof2; mask <<= 1) {
      const nd = newrank ^ mask;
      const dst = nd < rem ? nd * 2 + 1 : nd + rem;
      const m = await exchange(c, dst, enc(acc), dst, CollTag.Allreduce, o, 'allreduce');
      const other = asTyped(m, data, dst, 'allreduce', N);
      if (dst < r) {
        applyOp(op, other, acc);
        acc = other;
      } else {
        applyOp(op, acc, other);
      }
    }
  }
  if (r < 2 * rem) {
    if (r % 2 === 1) await c.csend(r - 1, enc(acc), CollTag.Allreduce);
    else acc = asTyped(await recvExpect(c, r + 1, CollTag.Allreduce, o, 'allreduce'), data, r + 1, 'allreduce', N);
  }
  return acc;
}

async function allreduceRing(c: C, data: TypedArray, op: Op, o: OpOptions | undefined): Promise<TypedArray> {
  const n = c.size;
  const r = c.rank;
  const N = data.length;
  const acc = copyOf(data);
  const base = Math.floor(N / n);
  const extra = N % n;
  const start = (i: number): number => i * base + Math.min(i, extra);
  const seg = (i: number): TypedArray => acc.subarray(start(i), start(i + 1));
  const left = (r - 1 + n) % n;
  const right = (r + 1) % n;
  for (let s = 0; s < n - 1; s++) {
    const si = (r - s + n) % n;
    const ri = (r - s - 1 + n) % n;
    const m = await exchange(c, right, enc(seg(si)), left, CollTag.ReduceScatter, o, 'allreduce');
    const mine = seg(ri);
    applyOp(op, mine, asTyped(m, data, left, 'allreduce', mine.length));
  }
  for (let s = 0; s < n - 1; s++) {
    const si = (r - s + 1 + n) % n;
    const ri = (r - s + n) % n;
    const m = await exchange(c, right, enc(seg(si)), left, CollTag.AllgatherRing, o, 'allreduce');
    const dst = seg(ri);
    dst.set(asTyped(m, data, left, 'allreduce', dst.length) as never);
  }
  return acc;
}

// --------------------------------------------------------------- alltoall

export async function alltoall(c: C, data: unknown, o: OpOptions | undefined): Promise<unknown> {
  const n = c.size;
  const r = c.rank;
  const jobs: Promise<unknown>[] = [];
  if (isTypedArray(data)) {
    if (data.length % n !== 0) throw new ArgumentError(`alltoall: ${data.length} elements do not split evenly over ${n} ranks`);
    const per = data.length / n;
    const out = alloc(data, data.length);
    out.set(data.subarray(r * per, (r + 1) * per) as never, r * per);
    for (let i = 1; i < n; i++) {
      const dst = (r + i) % n;
      const src = (r - i + n) % n;
      jobs.push(
        recvExpect(c, src, CollTag.Alltoall, o, 'alltoall').then((m) => out.set(asTyped(m, data, src, 'alltoall', per) as never, src * per)),
      );
      jobs.push(c.csend(dst, enc(data.subarray(dst * per, (dst + 1) * per)), CollTag.Alltoall));
    }
    await Promise.all(jobs);
    return out;
  }
  if (!Array.isArray(data) || data.length !== n) throw new ArgumentError(`alltoall: pass a typed array or an array of ${n} values`);
  const out: unknown[] = new Array(n);
  out[r] = data[r];
  for (let i = 1; i < n; i++) {
    const dst = (r + i) % n;
    const src = (r - i + n) % n;
    jobs.push(recvExpect(c, src, CollTag.Alltoall, o, 'alltoall').then((m) => (out[src] = asValue(m, src, 'alltoall'))));
    jobs.push(c.csend(dst, encodePayload(data[dst]), CollTag.Alltoall, true));
  }
  await Promise.all(jobs);
  return out;
}

// ------------------------------------------------------------------ split

export async function split(c: C, color: number, key: number, o: OpOptions | undefined): Promise<Communicator | undefined> {
  const n = c.size;
  const info = new Int32Array([color < 0 ? -1 : color, key, c.engine.nextContext]);
  const all = (await allgather(c, info, o)) as Int32Array;
  let max = 0;
  const colors = new Set<number>();
  for (let i = 0; i < n; i++) {
    max = Math.max(max, all[i * 3 + 2] as number);
    const col = all[i * 3] as number;
    if (col >= 0) colors.add(col);
  }
  const sorted = [...colors].sort((a, b) => a - b);
  c.engine.nextContext = Math.max(c.engine.nextContext, max + 2 * sorted.length);
  if (color < 0) return undefined;
  const ctx = max + 2 * sorted.indexOf(color);
  const members: number[] = [];
  for (let i = 0; i < n; i++) if (all[i * 3] === color) members.push(i);
  members.sort((a, b) => (all[a * 3 + 1] as number) - (all[b * 3 + 1] as number) || a - b);
  return c.derive(
    members.map((i) => c.world(i)),
    ctx,
  );
}
