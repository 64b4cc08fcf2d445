/**
 * What Switchboard left in /dev/shm: regions (`sb.<name>`) and named
 * semaphores (`sem.sb.<name>`), with who is attached, for
 * `switchboard shm ls|rm`.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SwitchboardError } from '../errors.js';
import { addon, shmError } from './native.js';
import { NAME_PREFIX } from './names.js';
import { REGION_HEADER_SIZE, checkHeader, headerInfo } from './region-header.js';

export const SHM_DIR = '/dev/shm';

export interface RegionEntry {
  /** The name to give openRegion / NamedSemaphore.open. */
  name: string;
  kind: 'region' | 'semaphore';
  /** Bytes of the object in /dev/shm. */
  bytes: number;
  mtime: Date;
  uid: number;
  /** Regions with a readable header: the user size, creator and attached processes. */
  size?: number;
  creatorPid?: number;
  attached?: { pid: number; count: number; alive: boolean }[];
  unlinkOnLastDetach?: boolean;
  /** No live process attached (regions with a header), or, for others, nothing to tell. */
  stale?: boolean;
  /** Why the header could not be read (raw region, permission, ...). */
  note?: string;
}

function inspect(name: string): Partial<RegionEntry> {
  const a = addon();
  let fd: number;
  try {
    fd = a.shmOpen(`/${NAME_PREFIX}${name}`, 0, 0);
  } catch (err) {
    return { note: shmError(err, 'open').message };
  }
  try {
    const size = a.fstat(fd).size;
    if (size < REGION_HEADER_SIZE) return { note: 'raw (no Switchboard header)' };
    const h = new Int32Array(a.mmap(fd, REGION_HEADER_SIZE, 0, REGION_HEADER_SIZE));
    try {
      checkHeader(h, size, name);
    } catch {
      return { note: 'raw (no Switchboard header)' };
    }
    const info = headerInfo(h);
    return {
      size: info.size,
      creatorPid: info.creatorPid,
      attached: info.attached,
      unlinkOnLastDetach: (info.flags & 1) !== 0,
      stale: info.overflow === 0 && !info.attached.some((x) => x.alive),
    };
  } catch (err) {
    return { note: shmError(err, 'inspect').message };
  } finally {
    a.close(fd);
  }
}

/** Every Switchboard object in /dev/shm. */
export function listRegions(dir = SHM_DIR): RegionEntry[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw shmError(err, `read ${dir}`);
  }
  const out: RegionEntry[] = [];
  for (const f of names.sort()) {
    let kind: RegionEntry['kind'];
    let name: string;
    if (f.startsWith(NAME_PREFIX)) {
      kind = 'region';
      name = f.slice(NAME_PREFIX.length);
    } else if (f.startsWith(`sem.${NAME_PREFIX}`)) {
      kind = 'semaphore';
      name = f.slice(4 + NAME_PREFIX.length);
    } else {
      continue;
    }
    let st;
    try {
      st = statSync(join(dir, f));
    } catch {
      continue; // removed meanwhile
    }
    const entry: RegionEntry = { name, kind, bytes: st.size, mtime: st.mtime, uid: st.uid };
    if (kind === 'region' && dir === SHM_DIR) Object.assign(entry, inspect(name));
    out.push(entry);
  }
  return out;
}

/**
 * Remove Switchboard objects: the given names, or with `stale` every region
 * no live process is attached to. Returns what was removed.
 */
export function removeRegions(options: { names?: readonly string[]; stale?: boolean; all?: boolean }): RegionEntry[] {
  const entries = listRegions();
  let chosen: RegionEntry[];
  if (options.all) chosen = entries;
  else if (options.stale) chosen = entries.filter((e) => e.kind === 'region' && e.stale === true);
  else {
    const wanted = new Set(options.names ?? []);
    chosen = entries.filter((e) => wanted.has(e.name));
    for (const n of wanted) {
      if (!chosen.some((e) => e.name === n)) throw new SwitchboardError('ENOENT', `no Switchboard shared-memory object "${n}"`);
    }
  }
  const a = addon();
  for (const e of chosen) {
    try {
      if (e.kind === 'region') a.shmUnlink(`/${NAME_PREFIX}${e.name}`);
      else a.semUnlink(`/${NAME_PREFIX}${e.name}`);
    } catch (err) {
      const x = shmError(err, `remove ${e.name}`);
      if (x.code !== 'ENOENT') throw x;
    }
  }
  return chosen;
}
