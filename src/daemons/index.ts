/**
 * switchboard/daemons: the habits of a well-behaved Unix daemon (seed 12.4;
 * Stevens, UNP 13 and APUE 13) as a small module every Switchboard server
 * uses, and the finger daemon and client (RFC 1288) built on it. See
 * README.md in this folder.
 */
export {
  DAEMON_CHILD_ENV,
  isDaemonChild,
  runDaemon,
  type DaemonContext,
  type DaemonOptions,
  type DaemonServer,
  type DaemonSpec,
  type RunningDaemon,
} from './daemon.js';
export { addDaemonOptions, daemonOptionsFrom, type DaemonCliOptions } from './cli-options.js';
export { createLog, type DaemonLog, type LogOptions } from './log.js';
export { PidFileLockedError, acquirePidFile, readPidFile, type PidFile } from './pidfile.js';
export { dropPrivileges, type DroppedPrivileges } from './privileges.js';
export { readProcIds, readProcSession, type ProcIds, type ProcSession } from './proc-status.js';
export { lookupGroupSync, lookupUserSync, parseGecos, parsePasswd, readPasswd, type Gecos, type PasswdEntry } from './passwd.js';
export { finger, fingerQuery, parseFingerTarget, renderFingerOutput, type FingerQueryOptions, type FingerTarget } from './finger-client.js';
export * from './fingerd/index.js';
