/** Test fixtures: a connected (writer, reader) pair of every stream kind. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createFifo, listen, openFifo, pipe, socketpair, type Channel } from '../../src/transport/index.js';

export interface Pair {
  /** The end we write on. */
  a: Channel;
  /** The end we read on. */
  b: Channel;
  /** True when b can also write to a. */
  duplex: boolean;
  cleanup(): Promise<void>;
}

export type PairKind = 'pipe' | 'socketpair' | 'fifo' | 'tcp4' | 'tcp6' | 'unix';

export const STREAM_KINDS: PairKind[] = ['pipe', 'socketpair', 'fifo', 'tcp4', 'tcp6', 'unix'];

export function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'sb-test-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function makePair(kind: PairKind, opts: { readHighWaterMark?: number } = {}): Promise<Pair> {
  switch (kind) {
    case 'pipe': {
      const [r, w] = pipe();
      return { a: w, b: r, duplex: false, cleanup: async () => void (r.destroy(), w.destroy()) };
    }
    case 'socketpair': {
      const [x, y] = socketpair();
      return { a: x, b: y, duplex: true, cleanup: async () => void (x.destroy(), y.destroy()) };
    }
    case 'fifo': {
      const t = tempDir();
      const path = join(t.dir, 'q.fifo');
      createFifo(path);
      const [r, w] = await Promise.all([openFifo(path, 'r', { timeoutMs: 5000, ...opts }), openFifo(path, 'w', { timeoutMs: 5000 })]);
      return { a: w, b: r, duplex: false, cleanup: async () => void (r.destroy(), w.destroy(), t.remove()) };
    }
    case 'tcp4':
    case 'tcp6':
    case 'unix': {
      const t = kind === 'unix' ? tempDir() : undefined;
      const addr = kind === 'tcp4' ? 'tcp://127.0.0.1:0' : kind === 'tcp6' ? 'tcp://[::1]:0' : `unix://${join(t!.dir, 's.sock')}`;
      const l = await listen(addr, opts);
      const [client, server] = await Promise.all([connect(l.address, opts), l.accept()]);
      return {
        a: client,
        b: server,
        duplex: true,
        cleanup: async () => {
          client.destroy();
          server.destroy();
          await l.close({ graceMs: 100 });
          t?.remove();
        },
      };
    }
  }
}

/** Read until `n` bytes have arrived (or EOF); returns them concatenated. */
export async function readBytes(ch: Channel, n: number): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let got = 0;
  while (got < n) {
    const c = await ch.read();
    if (c === null) break;
    parts.push(c);
    got += c.byteLength;
  }
  return Buffer.concat(parts);
}

export async function readAll(ch: Channel): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of ch) parts.push(c);
  return Buffer.concat(parts);
}

/** Node flags for a child that must load the same sources (tsx loader when run from source). */
export function childExecArgv(): string[] {
  return process.execArgv.filter((a) => !a.startsWith('--test'));
}
