/** The command-line options every Switchboard daemon shares, for commander commands. */
import type { Command } from 'commander';
import { ArgumentError } from '../errors.js';
import type { DaemonOptions } from './daemon.js';

export interface DaemonCliOptions {
  daemon?: boolean;
  pidfile?: string;
  logFile?: string;
  user?: string;
  group?: string;
  graceMs?: string;
  quiet?: boolean;
}

/** Add --daemon, --pidfile, --log-file, --user, --group, --grace-ms and --quiet to a command. */
export function addDaemonOptions(command: Command): Command {
  return command
    .option('--daemon', 'detach into the background (new session, no terminal, cwd /); default: stay in the foreground')
    .option('--pidfile <path>', 'write and lock a pidfile so that a second copy refuses to start')
    .option('--log-file <path>', 'append log lines here instead of stderr (reopened on SIGHUP)')
    .option('--user <name>', 'drop root privileges to this user after binding')
    .option('--group <name>', "group to switch to with --user (default: the user's primary group)")
    .option('--grace-ms <ms>', 'on SIGTERM/SIGINT, wait this long for requests in flight', '10000')
    .option('-q, --quiet', 'no log lines');
}

/** Turn parsed --daemon etc. into DaemonOptions. */
export function daemonOptionsFrom(opts: DaemonCliOptions): DaemonOptions {
  const graceMs = opts.graceMs === undefined ? undefined : Number(opts.graceMs);
  if (graceMs !== undefined && (!Number.isFinite(graceMs) || graceMs < 0)) throw new ArgumentError(`--grace-ms must be a non-negative number, got ${opts.graceMs}`);
  return {
    daemon: opts.daemon,
    pidfile: opts.pidfile,
    logFile: opts.logFile,
    user: opts.user,
    group: opts.group,
    graceMs,
    quiet: opts.quiet,
  };
}
