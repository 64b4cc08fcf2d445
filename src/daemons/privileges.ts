/**
 * Giving up root after binding a privileged port (Stevens: "a daemon should
 * run with the least privilege it needs"). Order matters: supplementary
 * groups, then the group, then the user; once the uid is gone the process can
 * no longer change its groups. The drop is verified: getting root back must
 * fail, or the daemon refuses to go on.
 */
import { ArgumentError, SwitchboardError } from '../errors.js';
import { lookupGroupSync, lookupUserSync } from './passwd.js';

export interface DroppedPrivileges {
  uid: number;
  gid: number;
  user: string;
}

/**
 * Switch to `user` (login or uid) and its primary group, or `group` when
 * given. Must be called as root; throws EACCES otherwise.
 */
export function dropPrivileges(user: string, group?: string): DroppedPrivileges {
  if (typeof process.setuid !== 'function' || typeof process.setgid !== 'function' || typeof process.setgroups !== 'function') {
    throw new SwitchboardError('EUNSUPPORTED', 'changing the user id is not supported on this platform (or in a worker thread)');
  }
  const entry = lookupUserSync(user);
  if (entry === undefined) throw new ArgumentError(`--user ${user}: no such user`);
  let gid = entry.gid;
  if (group !== undefined) {
    const g = lookupGroupSync(group);
    if (g === undefined) throw new ArgumentError(`--group ${group}: no such group`);
    gid = g;
  }
  if (process.getuid?.() !== 0) {
    if (process.getuid?.() === entry.uid) return { uid: entry.uid, gid, user: entry.login };
    throw new SwitchboardError('EACCES', `cannot switch to user ${entry.login}: not running as root`);
  }
  try {
    process.setgroups([gid]);
    process.setgid(gid);
    process.setuid(entry.uid);
  } catch (err) {
    throw new SwitchboardError('EACCES', `cannot switch to user ${entry.login}: ${(err as Error).message}`, { cause: err });
  }
  if (entry.uid !== 0) {
    let regained = false;
    try {
      process.setuid(0);
      regained = true;
    } catch {
      // expected: root is gone for good
    }
    if (regained) throw new SwitchboardError('EACCES', `privilege drop to ${entry.login} failed: setuid(0) still works`);
  }
  return { uid: entry.uid, gid, user: entry.login };
}
