/**
 * The write-ahead journal of the embedded store, in a data directory:
 *
 *   snapshot-<gen>   every live record at the moment generation <gen> began
 *   journal-<gen>    every change since, appended and fsynced before the ack
 *   LOCK             the pid of the daemon using the directory
 *
 * Appends from many requests are written with one write and one fdatasync
 * (group commit). Compaction writes snapshot-<gen+1>.tmp, fsyncs it, renames it
 * into place, starts an empty journal-<gen+1>, fsyncs the directory and only
 * then deletes generation <gen>; a crash at any point leaves one complete
 * generation to recover from.
 */
import { mkdir, open, readdir, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { SwitchboardError, fromSystemError } from '../../errors.js';
import { decodeEntries, encodeEntry } from './journal-codec.js';
import type { ContactInfo, NameOwner } from '../types.js';

export interface PersistedRecord {
  name: string;
  contact: ContactInfo;
  owner: NameOwner;
  since: number;
  tokenHash: string;
  ttlMs?: number;
}

export type JournalOp = { op: 'put'; rec: PersistedRecord } | { op: 'del'; name: string };

export interface JournalOptions {
  /** Compact once the journal passes this many bytes (and twice the live data). Default 4 MiB. */
  compactBytes?: number;
  /** fdatasync before acknowledging (default true; false only for tests of other things). */
  fsync?: boolean;
}

interface Pending {
  bytes: Uint8Array;
  resolve: () => void;
  reject: (e: Error) => void;
}

function isRecord(v: unknown): v is PersistedRecord {
  const r = v as PersistedRecord;
  return typeof r === 'object' && r !== null && typeof r.name === 'string' && typeof r.tokenHash === 'string' &&
    typeof r.since === 'number' && typeof r.contact === 'object' && r.contact !== null && typeof r.owner === 'object' && r.owner !== null;
}

function apply(map: Map<string, PersistedRecord>, op: unknown): void {
  const o = op as JournalOp;
  if (o?.op === 'put' && isRecord(o.rec)) map.set(o.rec.name, o.rec);
  else if (o?.op === 'del' && typeof o.name === 'string') map.delete(o.name);
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class Journal {
  private queue: Pending[] = [];
  private writing = false;
  private closed = false;
  private bytes: number;
  /** Records written since the last snapshot (for the compaction heuristic). */
  private liveBytesEstimate = 0;
  compactions = 0;

  private constructor(
    readonly dir: string,
    private gen: number,
    private handle: FileHandle,
    initialBytes: number,
    private readonly live: () => Iterable<PersistedRecord>,
    private readonly opts: Required<JournalOptions>,
  ) {
    this.bytes = initialBytes;
  }

  /** Open (creating) a data directory and recover its records. */
  static async open(
    dir: string,
    live: () => Iterable<PersistedRecord>,
    options: JournalOptions = {},
  ): Promise<{ journal: Journal; records: Map<string, PersistedRecord>; recovery: { generation: number; replayed: number; tornTail?: string } }> {
    const opts: Required<JournalOptions> = { compactBytes: options.compactBytes ?? 4 * 1024 * 1024, fsync: options.fsync ?? true };
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await Journal.lock(dir);
      const names = await readdir(dir);
      const gens = names
        .map((n) => /^snapshot-(\d+)$/.exec(n))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => Number(m[1]))
        .sort((a, b) => b - a);
      const records = new Map<string, PersistedRecord>();
      let gen = 0;
      for (const g of gens) {
        const snap = decodeEntries(new Uint8Array(await readFile(join(dir, `snapshot-${g}`))));
        const last = snap.entries.at(-1) as { op?: string; count?: number } | undefined;
        if (snap.stoppedBecause === undefined && last?.op === 'end' && last.count === snap.entries.length - 1) {
          for (const e of snap.entries.slice(0, -1)) apply(records, e);
          gen = g;
          break;
        }
      }
      const jpath = join(dir, `journal-${gen}`);
      let replayed = 0;
      let tornTail: string | undefined;
      let size = 0;
      try {
        const data = new Uint8Array(await readFile(jpath));
        const j = decodeEntries(data);
        for (const e of j.entries) apply(records, e);
        replayed = j.entries.length;
        size = j.validLength;
        if (j.validLength < data.length) tornTail = j.stoppedBecause;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      const handle = await open(jpath, 'a+', 0o600);
      if (tornTail !== undefined) {
        await handle.truncate(size);
        await handle.sync();
      }
      for (const n of names) {
        const m = /^(snapshot|journal)-(\d+)(\.tmp)?$/.exec(n);
        if (m && (Number(m[2]) !== gen || m[3] !== undefined)) await rm(join(dir, n), { force: true });
      }
      const journal = new Journal(dir, gen, handle, size, live, opts);
      const recovery: { generation: number; replayed: number; tornTail?: string } = { generation: gen, replayed };
      if (tornTail !== undefined) recovery.tornTail = tornTail;
      return { journal, records, recovery };
    } catch (err) {
      throw fromSystemError(err, `cannot open the name-service data directory ${dir}`);
    }
  }

  private static async lock(dir: string): Promise<void> {
    const path = join(dir, 'LOCK');
    try {
      const old = Number((await readFile(path, 'utf8')).trim());
      if (Number.isInteger(old) && old > 0 && old !== process.pid && pidAlive(old)) {
        throw new SwitchboardError('EADDRINUSE', `data directory ${dir} is in use by process ${old}`);
      }
    } catch (err) {
      if (err instanceof SwitchboardError) throw err;
    }
    await writeFile(path, `${process.pid}\n`, { mode: 0o600 });
  }

  /** Append one change; resolves once it is on disk. */
  append(op: JournalOp): Promise<void> {
    if (this.closed) return Promise.reject(new SwitchboardError('ECLOSED', 'the journal is closed'));
    const bytes = encodeEntry(op);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ bytes, resolve, reject });
      if (!this.writing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        const total = batch.reduce((n, p) => n + p.bytes.length, 0);
        const buf = new Uint8Array(total);
        let off = 0;
        for (const p of batch) {
          buf.set(p.bytes, off);
          off += p.bytes.length;
        }
        try {
          await this.handle.write(buf, 0, buf.length);
          if (this.opts.fsync) await this.handle.datasync();
          this.bytes += total;
          for (const p of batch) p.resolve();
        } catch (err) {
          const e = fromSystemError(err, 'name-service journal write failed');
          for (const p of batch) p.reject(e);
        }
        if (this.bytes > this.opts.compactBytes && this.bytes > 2 * this.liveBytesEstimate) {
          await this.compact().catch(() => undefined);
        }
      }
    } finally {
      this.writing = false;
    }
  }

  /** Write a fresh snapshot and start an empty journal (called between batches). */
  private async compact(): Promise<void> {
    const next = this.gen + 1;
    const tmp = join(this.dir, `snapshot-${next}.tmp`);
    const parts: Uint8Array[] = [];
    let count = 0;
    for (const r of this.live()) {
      parts.push(encodeEntry({ op: 'put', rec: r }));
      count++;
    }
    parts.push(encodeEntry({ op: 'end', count }));
    const size = parts.reduce((n, p) => n + p.length, 0);
    const h = await open(tmp, 'w', 0o600);
    try {
      for (const p of parts) await h.write(p, 0, p.length);
      await h.sync();
    } finally {
      await h.close();
    }
    await rename(tmp, join(this.dir, `snapshot-${next}`));
    const nh = await open(join(this.dir, `journal-${next}`), 'a+', 0o600);
    await nh.sync();
    await fsyncDir(this.dir);
    const old = this.gen;
    await this.handle.close();
    this.handle = nh;
    this.gen = next;
    this.bytes = 0;
    this.liveBytesEstimate = size;
    this.compactions++;
    await rm(join(this.dir, `journal-${old}`), { force: true });
    await rm(join(this.dir, `snapshot-${old}`), { force: true });
  }

  /** Compact now (tests, and the daemon at shutdown). */
  async compactNow(): Promise<void> {
    while (this.writing) await new Promise((r) => setTimeout(r, 5));
    this.writing = true;
    try {
      await this.compact();
    } finally {
      this.writing = false;
    }
    if (this.queue.length > 0) void this.flush();
  }

  get generation(): number {
    return this.gen;
  }
  get size(): number {
    return this.bytes;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.writing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 2));
    await this.handle.close();
    await rm(join(this.dir, 'LOCK'), { force: true });
  }
}
