/**
 * A message channel over a byte stream: a pure frame codec from src/wire
 * (length prefix or ONC RPC record marking) plus a Channel. Each write()
 * sends one message, each read() returns one whole message. A malformed or
 * oversized header is a typed error and the connection is closed; a peer that
 * dies in the middle of a message gives ECONNRESET, not a short message.
 */
import { ProtocolError, SwitchboardError } from '../errors.js';
import type { FrameDecoder, FrameEncoder } from '../wire/frame-decoder.js';
import { LengthPrefixDecoder, LengthPrefixEncoder } from '../wire/length-prefix.js';
import { RecordMarkingDecoder, RecordMarkingEncoder } from '../wire/record-marking.js';
import type { Channel, PeerInfo } from './channel.js';

export interface FramedOptions {
  framing: 'length-prefix' | 'record-marking' | { decoder: FrameDecoder; encoder: FrameEncoder };
  /** Largest message (record) accepted or sent; default 16 MiB. */
  maxMessageSize?: number;
  /** Record marking: split outgoing records into fragments of at most this many bytes. */
  maxFragment?: number;
}

function codecs(options: FramedOptions): { decoder: FrameDecoder; encoder: FrameEncoder } {
  const max = options.maxMessageSize;
  if (options.framing === 'length-prefix') return { decoder: new LengthPrefixDecoder(max), encoder: new LengthPrefixEncoder(max) };
  if (options.framing === 'record-marking') {
    return {
      decoder: new RecordMarkingDecoder(max === undefined ? {} : { maxRecordSize: max }),
      encoder: new RecordMarkingEncoder({
        ...(max === undefined ? {} : { maxRecordSize: max }),
        ...(options.maxFragment === undefined ? {} : { maxFragment: options.maxFragment }),
      }),
    };
  }
  return options.framing;
}

class FramedChannel implements Channel {
  readonly kind = 'framed' as const;
  readonly messages = true;
  readonly description: string;
  readonly #inner: Channel;
  readonly #dec: FrameDecoder;
  readonly #enc: FrameEncoder;
  #peek: Uint8Array | null | undefined;
  #error: Error | undefined;
  /** read() calls under way, and the promise the next one queues behind. */
  #reading = 0;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(inner: Channel, options: FramedOptions) {
    this.#inner = inner;
    const { decoder, encoder } = codecs(options);
    this.#dec = decoder;
    this.#enc = encoder;
    const name = typeof options.framing === 'string' ? options.framing : 'custom framing';
    this.description = `${inner.description} [${name}]`;
  }

  get peer(): PeerInfo {
    return this.#inner.peer;
  }
  get closed(): Promise<void> {
    return this.#inner.closed;
  }
  get isClosed(): boolean {
    return this.#inner.isClosed;
  }

  #fail(err: unknown): never {
    const e = err instanceof Error ? err : new SwitchboardError('EIO', String(err));
    if (this.#error === undefined) {
      this.#error = e;
      // a corrupt stream cannot be resynchronised: close the connection
      if (err instanceof ProtocolError) this.#inner.destroy(e);
    }
    throw this.#error;
  }

  #decodeNext(): Uint8Array | undefined {
    try {
      return this.#dec.next();
    } catch (err) {
      this.#fail(err);
    }
  }

  #atEof(): null {
    if (this.#dec.pending > 0) {
      this.#fail(
        new SwitchboardError('ECONNRESET', `${this.#inner.description}: peer closed in the middle of a message (${this.#dec.pending} bytes of it arrived)`),
      );
    }
    return null;
  }

  /** A message, null at EOF, or undefined if none is complete without waiting. */
  #fill(): Uint8Array | null | undefined {
    if (this.#peek !== undefined) return this.#peek;
    if (this.#error) throw this.#error;
    for (;;) {
      const m = this.#decodeNext();
      if (m !== undefined) return m;
      let chunk: Uint8Array | null | undefined;
      try {
        chunk = this.#inner.tryRead();
      } catch (err) {
        this.#fail(err);
      }
      if (chunk === undefined) return undefined;
      if (chunk === null) return this.#atEof();
      this.#dec.push(chunk);
    }
  }

  get readReady(): boolean {
    if (this.#error) return true;
    try {
      this.#peek = this.#fill();
    } catch {
      return true;
    }
    return this.#peek !== undefined;
  }

  tryRead(): Uint8Array | null | undefined {
    const m = this.#fill();
    this.#peek = undefined;
    return m;
  }

  /**
   * Reads run one at a time: a read that waits on the stream may complete
   * several messages, and the next read must find them in the decoder rather
   * than wait on the stream for bytes that will never come.
   */
  read(): Promise<Uint8Array | null> {
    if (this.#reading === 0) {
      let m: Uint8Array | null | undefined;
      try {
        m = this.tryRead();
      } catch (err) {
        return Promise.reject(err);
      }
      if (m !== undefined) return Promise.resolve(m);
    }
    const run = this.#reading === 0 ? this.#readLoop() : this.#tail.then(() => this.#readLoop());
    this.#reading++;
    const done = run.finally(() => {
      this.#reading--;
    });
    this.#tail = done.catch(() => undefined);
    return run;
  }

  async #readLoop(): Promise<Uint8Array | null> {
    for (;;) {
      const m = this.tryRead();
      if (m !== undefined) return m;
      let chunk: Uint8Array | null;
      try {
        chunk = await this.#inner.read();
      } catch (err) {
        this.#fail(err);
      }
      if (chunk === null) return this.#atEof();
      this.#dec.push(chunk);
    }
  }

  onReadReady(listener: () => void): () => void {
    let cancel: () => void = () => undefined;
    let done = false;
    const arm = (): void => {
      if (done) return;
      if (this.readReady) {
        done = true;
        listener();
        return;
      }
      cancel = this.#inner.onReadReady(arm);
    };
    if (this.readReady) {
      queueMicrotask(() => {
        if (!done) {
          done = true;
          listener();
        }
      });
    } else {
      cancel = this.#inner.onReadReady(arm);
    }
    return () => {
      done = true;
      cancel();
    };
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const m = await this.read();
      if (m === null) return;
      yield m;
    }
  }

  write(message: Uint8Array): Promise<void> {
    let chunks: Uint8Array[];
    try {
      chunks = this.#enc.encode(message);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#inner.writev(chunks);
  }

  async writev(messages: readonly Uint8Array[]): Promise<void> {
    const all: Uint8Array[] = [];
    for (const m of messages) all.push(...this.#enc.encode(m));
    return this.#inner.writev(all);
  }

  end(): Promise<void> {
    return this.#inner.end();
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
  destroy(err?: Error): void {
    this.#inner.destroy(err);
  }
}

/** Keep message boundaries on a byte stream; see FramedOptions. */
export function framed(channel: Channel, options: FramedOptions): Channel {
  return new FramedChannel(channel, options);
}
