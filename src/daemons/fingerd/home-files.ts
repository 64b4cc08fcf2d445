/**
 * Reading ~/.plan and friends on behalf of strangers, safely. fingerd runs
 * as an unprivileged user and must only ever show what the user chose to
 * share, so a file is read only when:
 * - it resolves (symlinks included) to a path inside the user's home;
 * - it is a regular file (no FIFO that would hang us, no device);
 * - it belongs to the user and is world-readable, in a home others may
 *   enter (mode o+x): what any local user could read anyway;
 * - and only its first maxBytes / maxLines are read.
 * The file is opened with O_NOFOLLOW|O_NONBLOCK and checked through the open
 * descriptor (fstat, /proc/self/fd), so a rename between check and read
 * cannot redirect us.
 */
import { constants as fsc } from 'node:fs';
import { lstat, open, readlink, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';

export interface HomeFileLimits {
  /** Bytes read from each file (default 16 KiB). */
  maxBytes?: number | undefined;
  /** Lines kept from each file (default 200). */
  maxLines?: number | undefined;
}

export type HomeFileRefusal = 'missing' | 'outside-home' | 'not-regular' | 'not-owner' | 'not-shared' | 'home-closed' | 'error';

export type HomeFileResult = { ok: true; text: string; truncated: boolean } | { ok: false; reason: HomeFileRefusal };

function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * Read `name` (e.g. ".plan") from `home` for the user with uid `owner`.
 */
export async function readSharedHomeFile(home: string, name: string, owner: number, limits: HomeFileLimits = {}): Promise<HomeFileResult> {
  const maxBytes = limits.maxBytes ?? 16 * 1024;
  const maxLines = limits.maxLines ?? 200;
  let realHome: string;
  try {
    realHome = await realpath(home);
    const hs = await stat(realHome);
    if (!hs.isDirectory()) return { ok: false, reason: 'missing' };
    if ((hs.mode & 0o001) === 0) return { ok: false, reason: 'home-closed' };
  } catch {
    return { ok: false, reason: 'missing' };
  }
  const path = join(realHome, name);
  let target: string;
  try {
    await lstat(path);
    target = await realpath(path);
  } catch {
    return { ok: false, reason: 'missing' };
  }
  if (!inside(realHome, target)) return { ok: false, reason: 'outside-home' };
  let fh;
  try {
    fh = await open(target, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | fsc.O_NOCTTY);
  } catch {
    return { ok: false, reason: 'error' };
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { ok: false, reason: 'not-regular' };
    if (st.uid !== owner) return { ok: false, reason: 'not-owner' };
    if ((st.mode & 0o004) === 0) return { ok: false, reason: 'not-shared' };
    try {
      // what we really opened, after every rename that may have raced us
      const opened = await readlink(`/proc/self/fd/${fh.fd}`);
      if (!inside(realHome, opened)) return { ok: false, reason: 'outside-home' };
    } catch {
      // no /proc: the O_NOFOLLOW open and the checks above stand
    }
    const buf = Buffer.alloc(Math.min(maxBytes, Math.max(0, st.size)) + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    let truncated = bytesRead > maxBytes;
    let text = buf.subarray(0, Math.min(bytesRead, maxBytes)).toString('utf8');
    const lines = text.split('\n');
    if (lines.length > maxLines + (text.endsWith('\n') ? 1 : 0)) {
      text = lines.slice(0, maxLines).join('\n') + '\n';
      truncated = true;
    }
    return { ok: true, text, truncated };
  } catch {
    return { ok: false, reason: 'error' };
  } finally {
    await fh.close();
  }
}
