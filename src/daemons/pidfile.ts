/**
 * A pidfile that is also a lock (Stevens, APUE 13.5 "single-instance
 * daemons"): the file is opened and locked with flock(2) for the daemon's
 * whole life, so a second copy finds the lock held and refuses to start. The
 * kernel drops the lock when the holder dies, so a stale pidfile (its process
 * gone, or its pid reused by an unrelated process) is simply taken over.
 *
 * Without the native addon it falls back to O_EXCL creation plus a liveness
 * check of the recorded pid, which is right except when that pid was reused.
 */
import { closeSync, ftruncateSync, openSync, readFileSync, unlinkSync, writeSync, constants as fsc } from 'node:fs';
import { SwitchboardError, fromSystemError } from '../errors.js';
import { loadAddon } from '../native.js';

interface DaemonAddon {
  tryLockExclusive(fd: number): boolean;
}

function addon(): DaemonAddon | undefined {
  try {
    return loadAddon<DaemonAddon>('sb_daemon');
  } catch {
    return undefined;
  }
}

/** Another live process holds the pidfile. */
export class PidFileLockedError extends SwitchboardError {
  override name = 'PidFileLockedError';
  constructor(
    readonly path: string,
    readonly holder: number | undefined,
  ) {
    super('EEXIST', `${path} is locked by a running copy${holder === undefined ? '' : ` (pid ${holder})`}; stop it first`);
  }
}

export interface PidFile {
  readonly path: string;
  readonly pid: number;
  /** 'flock' when the kernel lock is held, 'exclusive-create' for the fallback. */
  readonly method: 'flock' | 'exclusive-create';
  /** Rewrite the file with the current pid (after a fork-like re-exec). */
  update(pid?: number): void;
  /** Remove the file and drop the lock. Idempotent; never throws. */
  release(): void;
}

/** The pid written in a pidfile, or undefined when it is missing or unreadable. */
export function readPidFile(path: string): number | undefined {
  try {
    const text = readFileSync(path, 'utf8').trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function writePid(fd: number, pid: number): void {
  ftruncateSync(fd, 0);
  writeSync(fd, `${pid}\n`, 0);
}

/**
 * Create (or take over) `path`, lock it and write our pid. Throws
 * PidFileLockedError when another live copy holds it.
 */
export function acquirePidFile(path: string, options: { pid?: number; mode?: number } = {}): PidFile {
  const pid = options.pid ?? process.pid;
  const mode = options.mode ?? 0o644;
  const native = addon();
  if (native) return acquireWithFlock(path, pid, mode, native);
  return acquireExclusive(path, pid, mode);
}

function acquireWithFlock(path: string, pid: number, mode: number, native: DaemonAddon): PidFile {
  let fd: number;
  try {
    // O_NOFOLLOW: a symlink planted at the pidfile path must not redirect our writes
    fd = openSync(path, fsc.O_RDWR | fsc.O_CREAT | fsc.O_NOFOLLOW, mode);
  } catch (err) {
    throw fromSystemError(err, `pidfile ${path}`);
  }
  let locked: boolean;
  try {
    locked = native.tryLockExclusive(fd);
  } catch (err) {
    closeSync(fd);
    throw fromSystemError(err, `lock ${path}`);
  }
  if (!locked) {
    closeSync(fd);
    throw new PidFileLockedError(path, readPidFile(path));
  }
  writePid(fd, pid);
  let released = false;
  let current = pid;
  return {
    path,
    method: 'flock',
    get pid() {
      return current;
    },
    update(next = process.pid) {
      current = next;
      writePid(fd, next);
    },
    release() {
      if (released) return;
      released = true;
      try {
        unlinkSync(path); // may fail after a privilege drop; the next start takes the stale file over
      } catch {
        // ignore
      }
      try {
        closeSync(fd);
      } catch {
        // ignore
      }
    },
  };
}

function acquireExclusive(path: string, pid: number, mode: number): PidFile {
  let fd: number | undefined;
  for (let attempt = 0; attempt < 2 && fd === undefined; attempt++) {
    try {
      fd = openSync(path, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, mode);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fromSystemError(err, `pidfile ${path}`);
      const holder = readPidFile(path);
      if (holder !== undefined && holder !== pid && isAlive(holder)) throw new PidFileLockedError(path, holder);
      try {
        unlinkSync(path); // stale: its process is gone
      } catch {
        // someone else removed it first; retry the exclusive create
      }
    }
  }
  if (fd === undefined) throw new PidFileLockedError(path, readPidFile(path));
  const theFd = fd;
  writePid(theFd, pid);
  let released = false;
  let current = pid;
  return {
    path,
    method: 'exclusive-create',
    get pid() {
      return current;
    },
    update(next = process.pid) {
      current = next;
      writePid(theFd, next);
    },
    release() {
      if (released) return;
      released = true;
      try {
        if (readPidFile(path) === current) unlinkSync(path);
      } catch {
        // ignore
      }
      try {
        closeSync(theFd);
      } catch {
        // ignore
      }
    },
  };
}
