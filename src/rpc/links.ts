/**
 * Links: what a connection needs from a transport. The connection hands a
 * link one batch at a time: one or more frames, each a u32 big-endian length
 * and its bytes (the same framing as `framed(ch, { framing: 'length-prefix' })`,
 * so a framed peer can talk to us). Byte streams get the batch in one write;
 * message channels get one message per frame; worker ports get the batch in
 * one postMessage with its buffer (and any large binaries) transferred.
 */
import { parentPort, type MessagePort, type Worker } from 'node:worker_threads';
import { ProtocolError, SwitchboardError, fromSystemError } from '../errors.js';
import type { Channel, PeerInfo } from '../transport/channel.js';
import { isDirectReadable, isDirectWritable } from '../transport/socket-channel.js';
import { FrameSplitter } from './frame-splitter.js';

export interface LinkSink {
  /**
   * One frame: bytes start..end of buf; `attachments` are binaries that came
   * beside the batch (ports); `owned`: buf holds this frame alone and nobody
   * else has it, so large binaries may be decoded as views of it.
   */
  frame(buf: Uint8Array, start: number, end: number, attachments: readonly unknown[] | undefined, owned?: boolean): void;
  /** The frames read so far have all been delivered (the link found nothing more to read for now). */
  drained(): void;
  /** The link is gone: err undefined for an orderly end. */
  closed(err: Error | undefined): void;
}

export interface Link {
  readonly peer: PeerInfo;
  readonly description: string;
  /** True when binaries may travel beside the batch (attach()). */
  readonly attachments: boolean;
  start(sink: LinkSink): void;
  /** Send one batch; a promise while the link is busy (the next batch waits for it). */
  send(batch: Uint8Array, attachments: unknown[] | undefined, transfer: ArrayBuffer[] | undefined): Promise<void> | undefined;
  /**
   * Optional: hand `view` to the transport at once, without keeping it: the
   * number of bytes taken (the rest goes through send()), or -1 when not
   * possible now. Spares the copy of a batch out of the encoder's buffer.
   */
  sendNow?(view: Uint8Array): number;
  /** Orderly close after what was sent. */
  close(): Promise<void>;
  /** Drop the connection at once. */
  destroy(err?: Error): void;
}

/** Largest batch written to a shared-memory ring as one message (a bigger single frame goes alone). */
const RING_BATCH = 256 * 1024;

/** Cut a batch into parts of at most `max` bytes at frame boundaries (a bigger frame is a part of its own). */
export function splitAtFrames(batch: Uint8Array, max: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  let start = 0;
  let p = 0;
  while (p + 4 <= batch.length) {
    const end = p + 4 + view.getUint32(p, false);
    if (end - start > max && p > start) {
      out.push(batch.subarray(start, p));
      start = p;
    }
    p = end;
  }
  if (start < batch.length) out.push(batch.subarray(start));
  return out;
}

/** Walk the frames of a batch (used where each frame goes as its own message). */
export function splitBatch(batch: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  let p = 0;
  while (p + 4 <= batch.length) {
    const n = view.getUint32(p, false);
    out.push(batch.subarray(p + 4, p + 4 + n));
    p += 4 + n;
  }
  return out;
}

/**
 * A Channel: a byte stream or a shared-memory ring (batches of
 * length-prefixed frames), or another message channel (one frame per message).
 */
export class ChannelLink implements Link {
  readonly attachments = false;
  private sink: LinkSink | undefined;
  private readonly splitter: FrameSplitter | undefined;
  private readonly batches: boolean;
  private done = false;
  private readonly maxFrame: number;
  /** The chunk being split, when it has an ArrayBuffer of its own (Node makes one per socket read). */
  private wholeChunk: Uint8Array | undefined;
  private readonly emit = (buf: Uint8Array, start: number, end: number, owned: boolean): void => {
    // A frame that is the whole of such a chunk is as much its own as a gathered one.
    if (!this.done) this.sink?.frame(buf, start, end, undefined, owned || (buf === this.wholeChunk && start === 4 && end === buf.length));
  };

  constructor(
    readonly channel: Channel,
    maxMessageSize: number,
  ) {
    // A frame carries a type byte and a header besides the value.
    this.maxFrame = maxMessageSize + 64;
    // Byte streams, and shared-memory rings (only ever between two RPC
    // peers), carry whole batches; other message channels one frame per
    // message, so that a peer using framed(ch, 'length-prefix') understands us.
    this.batches = !channel.messages || channel.kind === 'ring';
    this.splitter = this.batches ? new FrameSplitter(this.maxFrame) : undefined;
  }

  get peer(): PeerInfo {
    return this.channel.peer;
  }

  get description(): string {
    return this.channel.description;
  }

  start(sink: LinkSink): void {
    this.sink = sink;
    void this.channel.closed.then(() => this.finish(undefined));
    // What is queued already goes through the pump; then a byte stream that
    // can hand over its chunks as they arrive does so (no queue, no
    // readiness callback per chunk), and the pump only sees EOF and errors.
    this.pump();
    const ch = this.channel;
    if (!this.done && !ch.messages && isDirectReadable(ch)) ch.readDirect(this.consume);
  }

  /** One chunk of a byte stream, straight from the socket. */
  private readonly consume = (chunk: Uint8Array): void => {
    if (this.done) return;
    // Checked, not assumed: a chunk that shares its ArrayBuffer is copied from as before.
    if (chunk.byteOffset === 0 && chunk.buffer.byteLength === chunk.length) this.wholeChunk = chunk;
    try {
      (this.splitter as FrameSplitter).push(chunk, this.emit);
    } catch (err) {
      this.destroy(err as Error);
      return;
    } finally {
      this.wholeChunk = undefined;
    }
    if (!this.done) (this.sink as LinkSink).drained();
  };

  private readonly pump = (): void => {
    const ch = this.channel;
    const sink = this.sink as LinkSink;
    while (!this.done) {
      let chunk: Uint8Array | null | undefined;
      try {
        chunk = ch.tryRead();
      } catch (err) {
        this.finish(err as Error);
        return;
      }
      if (chunk === undefined) {
        sink.drained();
        ch.onReadReady(this.pump);
        return;
      }
      if (chunk === null) {
        this.finish(undefined);
        return;
      }
      try {
        if (this.splitter) {
          this.splitter.push(chunk, this.emit);
          if (this.channel.messages && this.splitter.pending !== 0) throw new ProtocolError('a message ended inside a frame');
        } else {
          if (chunk.length > this.maxFrame) {
            throw new ProtocolError(`message of ${chunk.length} bytes exceeds the maximum of ${this.maxFrame}`, { code: 'EMSGSIZE' });
          }
          sink.frame(chunk, 0, chunk.length, undefined);
        }
      } catch (err) {
        this.destroy(err as Error);
        return;
      }
    }
  };

  private finish(err: Error | undefined): void {
    if (this.done) return;
    this.done = true;
    this.sink?.closed(err);
    // The connection is over once the peer has ended or failed: free the socket.
    if (!this.channel.isClosed) this.channel.destroy();
  }

  /**
   * Bytes of `view` a byte-stream socket took at once with one system call
   * (the caller sends the rest with send()), or -1 when that is not possible
   * now. `view` may be reused when this returns: nothing keeps it.
   */
  sendNow(view: Uint8Array): number {
    const ch = this.channel;
    return !ch.messages && isDirectWritable(ch) ? ch.writeNowSync(view) : -1;
  }

  send(batch: Uint8Array): Promise<void> | undefined {
    const ch = this.channel;
    // (A direct write was already tried on the encoder's buffer: sendNow().)
    if (!ch.messages) return ch.write(batch);
    if (this.batches) {
      // A ring holds a bounded amount: big batches go as several messages, split between frames.
      if (batch.length <= RING_BATCH) return ch.write(batch);
      return (async () => {
        for (const part of splitAtFrames(batch, RING_BATCH)) await ch.write(part);
      })();
    }
    // One message per frame (writev makes one message of them all on some
    // channels), one write pending at a time.
    const frames = splitBatch(batch);
    if (frames.length === 1) return ch.write(frames[0] as Uint8Array);
    return (async () => {
      for (const f of frames) await ch.write(f);
    })();
  }

  async close(): Promise<void> {
    this.done = true;
    await this.channel.close();
    this.sink?.closed(undefined);
  }

  destroy(err?: Error): void {
    this.channel.destroy(err);
    this.finish(err ?? new SwitchboardError('ECLOSED', 'connection closed'));
  }
}

/** A worker MessagePort (parentPort too) or a Worker. */
export type PortLike = MessagePort | Worker;

/** What PortLink uses of either. */
interface PortOps {
  postMessage(value: unknown, transferList?: readonly ArrayBuffer[]): void;
  on(event: string, listener: (value: unknown) => void): unknown;
  off(event: string, listener: (value: unknown) => void): unknown;
  close?(): void;
  terminate?(): unknown;
  start?(): void;
}

export function isPortLike(x: unknown): x is PortLike {
  const p = x as Partial<PortOps> | null;
  return typeof p === 'object' && p !== null && typeof p.postMessage === 'function' && typeof p.on === 'function' && typeof p.off === 'function';
}

interface PortBatch {
  b: Uint8Array;
  a: unknown[];
}

/**
 * A worker MessagePort: each batch is one postMessage whose buffer is
 * transferred (no copy); large binaries travel beside it, moved when
 * transfer() says so and copied once otherwise (connection.ts decides).
 */
export class PortLink implements Link {
  readonly attachments = true;
  readonly peer: PeerInfo = {};
  readonly description: string;
  private sink: LinkSink | undefined;
  private done = false;
  private readonly splitter: FrameSplitter;
  private attachmentsIn: unknown[] | undefined;
  private readonly emit = (buf: Uint8Array, start: number, end: number): void => {
    if (!this.done) this.sink?.frame(buf, start, end, this.attachmentsIn);
  };

  private readonly port: PortOps;

  constructor(port: PortLike, maxMessageSize: number, description = 'worker port') {
    this.port = port as unknown as PortOps;
    this.description = description;
    this.splitter = new FrameSplitter(maxMessageSize + 64);
  }

  start(sink: LinkSink): void {
    this.sink = sink;
    this.port.on('message', this.onMessage);
    this.port.on('close', this.onClose);
    // A Worker object has no 'close' but tells us when the thread is gone.
    if (typeof this.port.terminate === 'function') this.port.on('exit', this.onClose);
    this.port.start?.();
  }

  private readonly onMessage = (m: unknown): void => {
    if (this.done) return;
    let bytes: Uint8Array;
    let att: unknown[] | undefined;
    if (m instanceof Uint8Array) bytes = m;
    else if (typeof m === 'object' && m !== null && (m as PortBatch).b instanceof Uint8Array && Array.isArray((m as PortBatch).a)) {
      bytes = (m as PortBatch).b;
      att = (m as PortBatch).a;
    } else {
      this.destroy(new ProtocolError('malformed message on the worker port'));
      return;
    }
    try {
      this.attachmentsIn = att;
      this.splitter.push(bytes, this.emit);
      if (this.splitter.pending !== 0) throw new ProtocolError('a worker-port message ended inside a frame');
      if (!this.done) this.sink?.drained();
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.attachmentsIn = undefined;
    }
  };

  private readonly onClose = (): void => {
    this.finish(undefined);
  };

  private finish(err: Error | undefined): void {
    if (this.done) return;
    this.done = true;
    this.port.off('message', this.onMessage);
    this.port.off('close', this.onClose);
    this.port.off('exit', this.onClose);
    this.sink?.closed(err);
  }

  send(batch: Uint8Array, attachments: unknown[] | undefined, transfer: ArrayBuffer[] | undefined): undefined {
    if (this.done) return undefined;
    const list = [batch.buffer as ArrayBuffer];
    if (transfer) list.push(...transfer);
    try {
      this.port.postMessage(attachments ? ({ b: batch, a: attachments } satisfies PortBatch) : batch, list);
    } catch (err) {
      this.destroy(fromSystemError(err, 'postMessage'));
    }
    return undefined;
  }

  close(): Promise<void> {
    // Closing a MessagePort tells the other side ('close' there); a Worker or
    // parentPort stays up: the connection just stops listening.
    if (typeof this.port.terminate !== 'function' && typeof this.port.close === 'function' && !isParentPort(this.port)) this.port.close();
    this.finish(undefined);
    return Promise.resolve();
  }

  destroy(err?: Error): void {
    this.finish(err ?? new SwitchboardError('ECLOSED', 'connection closed'));
    if (typeof this.port.terminate !== 'function' && typeof this.port.close === 'function' && !isParentPort(this.port)) this.port.close();
  }
}

function isParentPort(p: unknown): boolean {
  return p === parentPort && p !== null;
}
