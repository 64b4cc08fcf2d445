/**
 * Finds length-prefixed frames (u32 big-endian length, then the bytes) in
 * the chunks of a byte stream and hands each one out as (buffer, start, end)
 * without making a view per frame: frames that sit inside one chunk are read
 * in place, and only a frame split across chunks is copied, once, into a
 * buffer of exactly its size (after its length has been checked against the
 * maximum). Pure, no I/O. Same wire format as src/wire's LengthPrefixDecoder.
 */
import { ProtocolError } from '../errors.js';

/** `owned`: buf was made for this frame alone (a frame gathered from several chunks), so views of it may be handed out. */
export type FrameSink = (buf: Uint8Array, start: number, end: number, owned: boolean) => void;

export class FrameSplitter {
  private parts: Uint8Array[] = [];
  private partLen = 0;
  /** Total bytes (header included) of the frame being gathered, -1 while its header is incomplete. */
  private need = -1;

  constructor(readonly maxFrame: number) {}

  /** Bytes held that do not make a whole frame yet. */
  get pending(): number {
    return this.partLen;
  }

  private lengthAt(buf: Uint8Array, p: number): number {
    const len = (buf[p] as number) * 0x1000000 + (((buf[p + 1] as number) << 16) | ((buf[p + 2] as number) << 8) | (buf[p + 3] as number));
    if (len > this.maxFrame) throw new ProtocolError(`message of ${len} bytes exceeds the maximum of ${this.maxFrame}`, { code: 'EMSGSIZE' });
    return len;
  }

  /** Feed one chunk; `emit` is called for every whole frame, in order. Throws ProtocolError (EMSGSIZE). */
  push(chunk: Uint8Array, emit: FrameSink): void {
    let p = 0;
    const n = chunk.length;
    if (this.partLen > 0) {
      if (this.need < 0) {
        // Complete the header first (it may itself be split).
        const header = new Uint8Array(4);
        let h = 0;
        for (const part of this.parts) for (let i = 0; i < part.length && h < 4; i++) header[h++] = part[i] as number;
        while (h < 4 && p < n) header[h++] = chunk[p++] as number;
        if (h < 4) {
          this.parts.push(chunk);
          this.partLen += n;
          return;
        }
        this.need = 4 + this.lengthAt(header, 0);
        p = 0; // the bytes taken for the header are still part of the frame
      }
      const missing = this.need - this.partLen;
      if (n < missing) {
        this.parts.push(chunk);
        this.partLen += n;
        return;
      }
      const frame = new Uint8Array(this.need);
      let at = 0;
      for (const part of this.parts) {
        frame.set(part, at);
        at += part.length;
      }
      frame.set(chunk.subarray(0, missing), at);
      p = missing;
      this.parts = [];
      this.partLen = 0;
      this.need = -1;
      emit(frame, 4, frame.length, true);
    }
    while (n - p >= 4) {
      const len = this.lengthAt(chunk, p);
      if (n - p - 4 < len) break;
      emit(chunk, p + 4, p + 4 + len, false);
      p += 4 + len;
    }
    if (p < n) {
      const rest = chunk.subarray(p);
      this.parts = [rest];
      this.partLen = rest.length;
      this.need = rest.length >= 4 ? 4 + this.lengthAt(rest, 0) : -1;
    }
  }
}
