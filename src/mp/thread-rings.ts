/**
 * Ranks as worker threads over shared-memory rings: one SharedArrayBuffer per
 * pair of ranks, holding two SPSC rings (one per direction). It is the same
 * ring code and framing as processes on one host use (src/shm), so threads
 * get the synchronous polling path too (a MessagePort costs a structured
 * clone and an event-loop turn per message). The MessagePort mesh is kept for
 * one job only: a port's 'close' (the thread exited or died) marks the rank
 * lost, since a thread of this process cannot be told apart by its pid.
 */
import { performance } from 'node:perf_hooks';
import type { MessagePort } from 'node:worker_threads';
import { RingConsumer, RingProducer, initRing, ringBytes, ringChannel } from '../shm/index.js';
import { TimeoutError } from '../errors.js';
import { PeerLostError } from './errors.js';
import { KeepAlive } from './keep-alive.js';
import type { LinkHandlers } from './link.js';
import { StreamLink } from './stream-link.js';

/** Rank i's view of the i-j ring pair. */
export interface ThreadRing {
  buffer: SharedArrayBuffer;
  /** Data bytes of each ring. */
  capacity: number;
  /** This rank writes the ring at offset 0 (and reads the one after it). */
  first: boolean;
}

/**
 * A count of the ranks whose ring ends are attached, shared by every thread
 * of the job: a ring end cannot attach once the other side has closed, so no
 * rank may finish (and close its ends) before every rank has attached, as
 * processes finish connecting before any of them starts.
 */
export function createAttachCount(): SharedArrayBuffer {
  return new SharedArrayBuffer(4);
}

/**
 * Count this rank in, then wait until all `n` are, looking every millisecond
 * (this happens once, at start; a timer keeps the thread alive meanwhile,
 * which Atomics.waitAsync would not).
 */
export async function attachAndWait(count: SharedArrayBuffer, n: number, timeoutMs: number): Promise<void> {
  const cell = new Int32Array(count);
  Atomics.add(cell, 0, 1);
  const end = performance.now() + timeoutMs;
  for (let seen = Atomics.load(cell, 0); seen < n; seen = Atomics.load(cell, 0)) {
    if (performance.now() >= end) throw new TimeoutError(`only ${seen} of ${n} rank threads attached their rings within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** The ring pairs of an N-rank mesh: result[i][j] is rank i's side of the i-j pair (null on the diagonal). */
export function createRingMesh(n: number, capacity: number): (ThreadRing | null)[][] {
  const mesh: (ThreadRing | null)[][] = Array.from({ length: n }, () => new Array<ThreadRing | null>(n).fill(null));
  const one = ringBytes(capacity);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const buffer = new SharedArrayBuffer(2 * one);
      initRing(buffer, 0, { capacity });
      initRing(buffer, one, { capacity });
      (mesh[i] as (ThreadRing | null)[])[j] = { buffer, capacity, first: true };
      (mesh[j] as (ThreadRing | null)[])[i] = { buffer, capacity, first: false };
    }
  }
  return mesh;
}

export class ThreadRingLink extends StreamLink {
  private readonly ports: readonly (MessagePort | null)[];
  private readonly keep = new KeepAlive();

  constructor(rank: number, rings: readonly (ThreadRing | null)[], ports: readonly (MessagePort | null)[], maxMessageSize: number) {
    let capacity = 1 << 20;
    const peers = rings.map((r, j) => {
      if (r === null) return null;
      capacity = r.capacity;
      const one = ringBytes(r.capacity);
      const out = new RingProducer(r.buffer, r.first ? 0 : one);
      const input = new RingConsumer(r.buffer, r.first ? one : 0, { maxMessageSize: maxMessageSize + 64 });
      return { channel: ringChannel(out, input, `ring to rank ${j} (threads)`) };
    });
    // A ring's largest record is a quarter of its capacity; 16 bytes go to its record header.
    super(rank, peers, { maxMessageSize, ringRecordLimit: capacity / 4 - 16 });
    this.ports = ports;
  }

  override start(h: LinkHandlers): void {
    super.start(h);
    this.ports.forEach((p, j) => {
      if (p === null) return;
      p.on('close', () => {
        // A rank that finishes writes its goodbye into the ring before its ports close: take it
        // (and everything before it) first, so an orderly end is not taken for a death.
        while (this.poll()) {
          // (poll() may stop at a message a receive took: again until nothing is left)
        }
        h.lost(j, new PeerLostError(j, `rank ${j} is gone: its thread exited`));
      });
      p.unref();
    });
  }

  override setActive(active: boolean): void {
    this.keep.set(active);
  }

  override async close(): Promise<void> {
    this.keep.stop();
    await super.close();
    for (const p of this.ports) p?.close();
  }
}
