/**
 * Named shared-memory regions (seed 12.2.4: register a named region of a given
 * size, map it into any process). The memory is a SharedArrayBuffer, so
 * typed arrays and Atomics work on it, it can be posted to worker_threads
 * as is, and the synchronisation objects of this folder can live inside it.
 *
 * A region created here starts with a hidden 256-byte header (region-header.ts)
 * that records its size and which processes are attached, which is what
 * makes `unlinkOnLastDetach` and `switchboard shm ls` honest. `raw: true`
 * maps a plain POSIX object instead, for sharing with programs that know
 * nothing of the header.
 */
import { closeSync, fstatSync, openSync, constants as fsc } from 'node:fs';
import { ArgumentError, SwitchboardError } from '../errors.js';
import { addon, shmError, sys } from './native.js';
import { posixName } from './names.js';
import {
  FLAG_UNLINK_ON_LAST_DETACH,
  REGION_HEADER_SIZE,
  attach,
  checkHeader,
  detach,
  headerInfo,
  nobodyAttached,
  readFlags,
  readSize,
  setSize,
  writeHeader,
  type HeaderInfo,
} from './region-header.js';

/** Largest region size accepted (1 TiB); tmpfs limits usually bite first, as ELIMIT. */
export const MAX_REGION_SIZE = 2 ** 40;

export interface CreateRegionOptions {
  /** Permission bits of the object (default 0o600). */
  mode?: number | undefined;
  /** Fail with EEXIST when the name is taken (default true). False opens and reuses it. */
  exclusive?: boolean | undefined;
  /** Unlink the name when the last attached process closes it (default false). */
  unlinkOnLastDetach?: boolean | undefined;
  /** No header: the whole object is the user's (default false). */
  raw?: boolean | undefined;
  /** Reserve the pages now so a full /dev/shm fails here, not with SIGBUS later (default true). */
  reserve?: boolean | undefined;
}

export interface OpenRegionOptions {
  /** The object has no Switchboard header (made by another program, or created raw). */
  raw?: boolean | undefined;
  /** For raw objects: map only this many bytes (default: the object's size). */
  size?: number | undefined;
}

export type RegionSource = string | { fd: number };

function checkSize(size: unknown): number {
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1) {
    throw new ArgumentError(`region size must be a positive integer, got ${String(size)}`);
  }
  if (size > MAX_REGION_SIZE) throw new SwitchboardError('ELIMIT', `region size ${size} is beyond the limit of ${MAX_REGION_SIZE} bytes`);
  return size;
}

/** A mapped shared-memory region. */
export class Region {
  /** The name given to createRegion/openRegion (undefined for an inherited fd or a file). */
  readonly name: string | undefined;
  /** The POSIX name (`/sb.name`) or the file path; undefined when opened from an fd only. */
  readonly path: string | undefined;
  readonly kind: 'shm' | 'file';
  readonly raw: boolean;
  #fd: number;
  #buffer: SharedArrayBuffer;
  #header: Int32Array | undefined;
  #slotted = false;
  #closed = false;

  /** @internal */
  constructor(init: {
    name: string | undefined;
    path: string | undefined;
    kind: 'shm' | 'file';
    fd: number;
    buffer: SharedArrayBuffer;
    header: Int32Array | undefined;
  }) {
    this.name = init.name;
    this.path = init.path;
    this.kind = init.kind;
    this.raw = init.header === undefined;
    this.#fd = init.fd;
    this.#buffer = init.buffer;
    this.#header = init.header;
    if (this.#header) this.#slotted = attach(this.#header);
  }

  /** The region's bytes (after the header), shared with every process that maps it. */
  get buffer(): SharedArrayBuffer {
    this.#check();
    return this.#buffer;
  }

  get size(): number {
    return this.#buffer.byteLength;
  }

  /**
   * The open file descriptor, close-on-exec: pass it to a child in `stdio`
   * (e.g. `stdio: ['inherit', 'inherit', 'inherit', region.fd]`) and open it
   * there with `openRegion({ fd: 3 })`. -1 after close().
   */
  get fd(): number {
    return this.#fd;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** Who is attached, from the header (undefined for raw regions). */
  info(): HeaderInfo | undefined {
    this.#check();
    return this.#header ? headerInfo(this.#header) : undefined;
  }

  /** The size another process may have grown the region to (header regions); `size` is what this mapping covers. */
  currentSize(): number {
    this.#check();
    return this.#header ? readSize(this.#header) : this.#buffer.byteLength;
  }

  /**
   * Grow the region to `newSize` bytes and map it again: `buffer` changes and
   * objects built on the old buffer keep working on the old (still valid)
   * part. Shrinking is refused: another mapping touching the cut-off pages
   * would die of SIGBUS.
   */
  resize(newSize: number): SharedArrayBuffer {
    this.#check();
    checkSize(newSize);
    if (newSize < this.#buffer.byteLength) throw new SwitchboardError('EUNSUPPORTED', 'shared regions can grow but not shrink (other mappings would fault)');
    if (newSize === this.#buffer.byteLength) return this.#buffer;
    const base = this.#header ? REGION_HEADER_SIZE : 0;
    sys('resize', () => {
      addon().ftruncate(this.#fd, base + newSize);
      addon().fallocate(this.#fd, base + newSize);
    });
    this.#buffer = sys('mmap', () => addon().mmap(this.#fd, base + newSize, base, newSize));
    if (this.#header) setSize(this.#header, newSize);
    return this.#buffer;
  }

  /**
   * Map the region again at the size recorded in its header, after another
   * process called resize(). Returns the (possibly new) buffer.
   */
  refresh(): SharedArrayBuffer {
    this.#check();
    const size = this.currentSize();
    if (size > this.#buffer.byteLength) {
      const base = this.#header ? REGION_HEADER_SIZE : 0;
      this.#buffer = sys('mmap', () => addon().mmap(this.#fd, base + size, base, size));
    }
    return this.#buffer;
  }

  /** msync(2): write dirty pages back (files); `sync: true` waits for the disk. */
  flush(options: { offset?: number; length?: number; sync?: boolean } = {}): void {
    this.#check();
    const offset = options.offset ?? 0;
    const length = options.length ?? this.#buffer.byteLength - offset;
    sys('msync', () => addon().msync(this.#buffer, offset, length, options.sync ?? true));
  }

  /** Remove the name (the memory lives on while mapped). Idempotent; ENOENT is ignored. */
  unlink(): void {
    if (this.path === undefined || this.kind !== 'shm') throw new SwitchboardError('EINVAL', 'this region has no shared-memory name to unlink');
    unlinkRegion(this.path);
  }

  /**
   * Detach: close the descriptor and drop this process's attachment; with
   * unlinkOnLastDetach, the last live process to close unlinks the name. The
   * memory itself is unmapped when the last SharedArrayBuffer over it is
   * garbage-collected (workers may still hold it). Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const h = this.#header;
    if (h) {
      detach(h, this.#slotted);
      if (readFlags(h) & FLAG_UNLINK_ON_LAST_DETACH && this.path !== undefined && nobodyAttached(h)) unlinkRegion(this.path);
      this.#header = undefined;
    }
    try {
      addon().close(this.#fd);
    } catch {
      // already closed by someone else: nothing left to release
    }
    this.#fd = -1;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #check(): void {
    if (this.#closed) throw new SwitchboardError('ECLOSED', `region ${this.name ?? this.path ?? ''} is closed`);
  }
}

function unlinkRegion(path: string): void {
  try {
    addon().shmUnlink(path);
  } catch (err) {
    const e = shmError(err, `unlink ${path}`);
    if (e.code !== 'ENOENT') throw e;
  }
}

/** Remove a region's name; true if it existed. */
export function unlinkRegionName(name: string): boolean {
  const path = posixName(name);
  try {
    addon().shmUnlink(path);
    return true;
  } catch (err) {
    const e = shmError(err, `unlink ${path}`);
    if (e.code === 'ENOENT') return false;
    throw e;
  }
}

function mapNew(fd: number, size: number, raw: boolean, flags: number, reserve: boolean): { buffer: SharedArrayBuffer; header: Int32Array | undefined } {
  const base = raw ? 0 : REGION_HEADER_SIZE;
  const a = addon();
  a.ftruncate(fd, base + size);
  if (reserve) a.fallocate(fd, base + size);
  const buffer = a.mmap(fd, base + size, base, size);
  if (raw) return { buffer, header: undefined };
  const header = new Int32Array(a.mmap(fd, REGION_HEADER_SIZE, 0, REGION_HEADER_SIZE));
  writeHeader(header, size, flags);
  return { buffer, header };
}

function mapExisting(fd: number, what: string, raw: boolean, wantSize: number | undefined): { buffer: SharedArrayBuffer; header: Int32Array | undefined } {
  const a = addon();
  const objectSize = a.fstat(fd).size;
  if (raw) {
    const size = wantSize ?? objectSize;
    if (objectSize === 0) throw new SwitchboardError('EPROTO', `${what} is empty`);
    if (size < 1 || size > objectSize) throw new ArgumentError(`${what}: cannot map ${size} bytes of a ${objectSize}-byte object`);
    return { buffer: a.mmap(fd, size, 0, size), header: undefined };
  }
  if (objectSize < REGION_HEADER_SIZE) throw new SwitchboardError('EPROTO', `${what} is too small (${objectSize} bytes) to be a Switchboard region`);
  const header = new Int32Array(a.mmap(fd, REGION_HEADER_SIZE, 0, REGION_HEADER_SIZE));
  // A creator may be between ftruncate and writing the header: give it a moment.
  const until = Date.now() + 200;
  while (Atomics.load(header, 0) === 0 && Date.now() < until) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
  const size = checkHeader(header, objectSize, what);
  return { buffer: a.mmap(fd, REGION_HEADER_SIZE + size, REGION_HEADER_SIZE, size), header };
}

/**
 * Create a named region of `size` bytes, zero-filled. Errors: EEXIST (name
 * taken, with exclusive), EINVAL (bad name or size), ELIMIT (too large or no
 * room in /dev/shm), EACCES.
 */
export function createRegion(name: string, size: number, options: CreateRegionOptions = {}): Region {
  const path = posixName(name);
  checkSize(size);
  const mode = options.mode ?? 0o600;
  const exclusive = options.exclusive ?? true;
  const raw = options.raw ?? false;
  const flags = options.unlinkOnLastDetach ? FLAG_UNLINK_ON_LAST_DETACH : 0;
  if (raw && options.unlinkOnLastDetach) throw new ArgumentError('unlinkOnLastDetach needs the region header (not raw)');
  const a = addon();
  let fd: number;
  try {
    fd = a.shmOpen(path, exclusive ? 2 : 1, mode);
  } catch (err) {
    const e = shmError(err, `create region ${name}`);
    if (e.code === 'EEXIST') throw new SwitchboardError('EEXIST', `shared-memory region "${name}" (${path}) already exists`, { cause: err });
    throw e;
  }
  try {
    const existing = a.fstat(fd).size;
    const mapped = existing > 0 && !exclusive ? mapExisting(fd, `region ${name}`, raw, raw ? size : undefined) : mapNew(fd, size, raw, flags, options.reserve ?? true);
    if (mapped.buffer.byteLength < size) throw new SwitchboardError('EEXIST', `region "${name}" exists with ${mapped.buffer.byteLength} bytes, fewer than ${size}`);
    return new Region({ name, path, kind: 'shm', fd, ...mapped });
  } catch (err) {
    a.close(fd);
    if (exclusive) unlinkRegion(path);
    throw shmError(err, `create region ${name}`);
  }
}

/**
 * Open an existing region by name, or from an inherited descriptor
 * (`{ fd }`). Errors: ENOENT (no such region), EPROTO (not a Switchboard
 * region: use raw), EACCES.
 */
export function openRegion(source: RegionSource, options: OpenRegionOptions = {}): Region {
  const raw = options.raw ?? false;
  if (options.size !== undefined) checkSize(options.size);
  const a = addon();
  if (typeof source === 'object' && source !== null && 'fd' in source) {
    const { fd } = source;
    if (!Number.isInteger(fd) || fd < 0) throw new ArgumentError('fd must be a non-negative integer');
    // Keep our own descriptor, close-on-exec, so close() never closes the caller's.
    const own = sys('dup', () => openSync(`/proc/self/fd/${fd}`, fsc.O_RDWR));
    try {
      const mapped = mapExisting(own, `fd ${fd}`, raw, options.size);
      return new Region({ name: undefined, path: undefined, kind: 'shm', fd: own, ...mapped });
    } catch (err) {
      closeSync(own);
      throw shmError(err, `open region from fd ${fd}`);
    }
  }
  if (typeof source !== 'string') throw new ArgumentError('openRegion needs a name or { fd }');
  const path = posixName(source);
  let fd: number;
  try {
    fd = a.shmOpen(path, 0, 0);
  } catch (err) {
    const e = shmError(err, `open region ${source}`);
    if (e.code === 'ENOENT') throw new SwitchboardError('ENOENT', `no shared-memory region "${source}" (${path})`, { cause: err });
    throw e;
  }
  try {
    const mapped = mapExisting(fd, `region ${source}`, raw, options.size);
    return new Region({ name: source, path, kind: 'shm', fd, ...mapped });
  } catch (err) {
    a.close(fd);
    throw shmError(err, `open region ${source}`);
  }
}

export interface MapFileOptions {
  /** Make the file this long (grows it; never shrinks). Required when creating. */
  size?: number | undefined;
  /** Create the file if missing (default true when size is given). */
  create?: boolean | undefined;
  mode?: number | undefined;
}

/**
 * Map a regular file shared ("files as a shared data space", seed 12.2.4):
 * every process mapping it sees the same bytes, and they persist in the file.
 * Call region.flush() to write them back with msync.
 */
export function mapFile(path: string, options: MapFileOptions = {}): Region {
  if (typeof path !== 'string' || path === '') throw new ArgumentError('mapFile needs a path');
  if (options.size !== undefined) checkSize(options.size);
  const create = options.create ?? options.size !== undefined;
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDWR | (create ? fsc.O_CREAT : 0), options.mode ?? 0o600);
  } catch (err) {
    throw shmError(err, `open ${path}`);
  }
  try {
    const current = fstatSync(fd).size;
    const size = Math.max(current, options.size ?? 0);
    if (size === 0) throw new ArgumentError(`${path} is empty: give a size to map`);
    if (size > current) sys('ftruncate', () => addon().ftruncate(fd, size));
    const buffer = sys('mmap', () => addon().mmap(fd, size, 0, size));
    return new Region({ name: undefined, path, kind: 'file', fd, buffer, header: undefined });
  } catch (err) {
    closeSync(fd);
    throw shmError(err, `map ${path}`);
  }
}
