/**
 * Ranks as worker threads of one process: a full mesh of MessagePorts (one
 * MessageChannel per pair). Payloads of 4 KiB and more move by transfer list
 * (one copy at most, none when the sender hands its buffer over); a port's
 * 'close' event (the other thread exited or died) marks the rank lost.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { ArgumentError } from '../errors.js';
import { PeerLostError } from './errors.js';
import { KeepAlive } from './keep-alive.js';
import type { Envelope, Link, LinkHandlers } from './link.js';

/** [ctx, tag, kind, dtype, bytes]: a compact shape for structured clone. */
type PortMessage = [number, number, number, number, Uint8Array];

const TRANSFER_MIN = 4096;

export class PortLink implements Link {
  readonly kind = 'port';
  readonly maxFragment = Infinity;
  readonly rank: number;
  readonly size: number;
  private readonly ports: readonly (MessagePort | null)[];
  private readonly keep = new KeepAlive();

  constructor(rank: number, ports: readonly (MessagePort | null)[]) {
    this.rank = rank;
    this.size = ports.length;
    this.ports = ports;
  }

  start(h: LinkHandlers): void {
    this.ports.forEach((p, j) => {
      if (p === null) return;
      p.on('message', (m: PortMessage) => h.message(j, { ctx: m[0], tag: m[1], kind: m[2], dtype: m[3], bytes: m[4] }));
      p.on('close', () => h.lost(j, new PeerLostError(j, `rank ${j} is gone: its thread exited`)));
      p.unref();
    });
  }

  send(to: number, env: Envelope): void;
  send(to: number, env: Envelope, owned: boolean): void;
  send(to: number, env: Envelope, owned = false): void {
    const p = this.ports[to];
    if (p === undefined || p === null) throw new ArgumentError(`no port to rank ${to}`);
    const b = env.bytes;
    const whole = b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer;
    if (b.byteLength >= TRANSFER_MIN) {
      const mine = owned && whole ? b : b.slice();
      p.postMessage([env.ctx, env.tag, env.kind, env.dtype, mine] satisfies PortMessage, [mine.buffer as ArrayBuffer]);
    } else {
      p.postMessage([env.ctx, env.tag, env.kind, env.dtype, whole ? b : b.slice()] satisfies PortMessage);
    }
  }

  setActive(active: boolean): void {
    this.keep.set(active);
  }

  async close(): Promise<void> {
    this.keep.stop();
    for (const p of this.ports) p?.close();
  }
}

/** The ports of an N-rank mesh: result[i][j] is rank i's end of the i-j channel (null on the diagonal). */
export function createPortMesh(n: number): (MessagePort | null)[][] {
  const mesh: (MessagePort | null)[][] = Array.from({ length: n }, () => new Array<MessagePort | null>(n).fill(null));
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const { port1, port2 } = new MessageChannel();
      (mesh[i] as (MessagePort | null)[])[j] = port1;
      (mesh[j] as (MessagePort | null)[])[i] = port2;
    }
  }
  return mesh;
}

/** A world of one rank: only self-sends, which the engine handles itself. */
export class SelfLink implements Link {
  readonly kind = 'self';
  readonly maxFragment = Infinity;
  readonly rank = 0;
  readonly size = 1;
  start(): void {}
  send(): void {
    throw new ArgumentError('a world of one rank has no peers');
  }
  setActive(): void {}
  async close(): Promise<void> {}
}
