/**
 * The habits every Switchboard server shares (Stevens, UNP 13.4 and APUE 13):
 * foreground by default, for service managers; `--daemon` detaches (a new
 * session without a controlling terminal, stdio on /dev/null or the log,
 * working directory /); a locked pidfile so two copies cannot run; SIGTERM
 * and SIGINT let in-flight requests finish, then exit 0; SIGHUP reopens the
 * log and reloads the configuration; root is dropped right after binding.
 *
 * A server plugs in with a start function that binds and returns something
 * closable:
 *
 *   await runDaemon({ name: 'fingerd', loadConfig, start: (config, ctx) => startFingerd(config), reload },
 *                   { daemon: opts.daemon, pidfile: opts.pidfile, user: opts.user });
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { ArgumentError, SwitchboardError } from '../errors.js';
import { createLog, type DaemonLog } from './log.js';
import { acquirePidFile, type PidFile } from './pidfile.js';
import { dropPrivileges, type DroppedPrivileges } from './privileges.js';

/** Set in the environment of the re-spawned background copy. */
export const DAEMON_CHILD_ENV = 'SWITCHBOARD_DAEMON_CHILD';
/** The readiness pipe of the background copy (its stdio[3]). */
const READY_FD = 3;

export interface DaemonOptions {
  /** Detach into the background (`--daemon`). */
  daemon?: boolean | undefined;
  /** Pidfile to create and lock (`--pidfile`). */
  pidfile?: string | undefined;
  /** Log to this file instead of stderr (`--log-file`); reopened on SIGHUP. */
  logFile?: string | undefined;
  /** Drop to this user after start() has bound its sockets (`--user`). */
  user?: string | undefined;
  /** Group to switch to (default: the user's primary group). */
  group?: string | undefined;
  /** How long SIGTERM waits for in-flight requests before cutting them (default 10 s). */
  graceMs?: number | undefined;
  /** No log lines at all. */
  quiet?: boolean | undefined;
  /** Install SIGTERM/SIGINT/SIGHUP handlers (default true; false for in-process tests). */
  handleSignals?: boolean | undefined;
  /** Exit the process after a signal-initiated stop (default true). */
  exitOnStop?: boolean | undefined;
  /** Arguments to re-spawn with for --daemon (default: this process's own). */
  respawnArgs?: readonly string[] | undefined;
  /** How long the foreground parent waits for the background copy to be ready (default 30 s). */
  readyTimeoutMs?: number | undefined;
}

/** What start() returns: anything that can stop serving. */
export interface DaemonServer {
  /** Stop accepting, let open requests finish for up to graceMs, then cut them. */
  close(options?: { graceMs?: number }): Promise<void>;
  /** One line for the log, e.g. "listening on tcp://0.0.0.0:79". */
  readonly description?: string;
}

export interface DaemonContext {
  readonly name: string;
  readonly log: DaemonLog;
}

export interface DaemonSpec<C, S extends DaemonServer> {
  name: string;
  /** Read the configuration; called at start and again on every SIGHUP. */
  loadConfig?: () => C | Promise<C>;
  /** Bind and start serving. Runs as root when --user is given: bind here, nothing else privileged. */
  start(config: C, ctx: DaemonContext): Promise<S>;
  /** Apply a reloaded configuration to the running server (SIGHUP). */
  reload?(server: S, config: C, ctx: DaemonContext): void | Promise<void>;
}

export interface RunningDaemon<C, S extends DaemonServer> {
  readonly name: string;
  readonly server: S;
  readonly config: C;
  readonly log: DaemonLog;
  readonly pidfile: PidFile | undefined;
  readonly privileges: DroppedPrivileges | undefined;
  /** Reopen the log and reload the configuration, as SIGHUP does. */
  reload(): Promise<void>;
  /** Finish in-flight requests, release the pidfile, close the log. Idempotent. */
  stop(reason?: string): Promise<void>;
  /** Resolves once stopped. */
  readonly stopped: Promise<void>;
}

/** True in the background copy that `--daemon` spawned. */
export function isDaemonChild(): boolean {
  return process.env[DAEMON_CHILD_ENV] !== undefined;
}

/**
 * Run a server with the daemon habits. In the foreground (or in the
 * background copy) it resolves with the running daemon. With `daemon: true`
 * in the original process it re-spawns itself detached, waits until the copy
 * reports ready (or failed), and exits with 0 (or 1): it never resolves.
 */
export async function runDaemon<C, S extends DaemonServer>(spec: DaemonSpec<C, S>, options: DaemonOptions = {}): Promise<RunningDaemon<C, S>> {
  check(spec, options);
  const pidfilePath = options.pidfile === undefined ? undefined : resolvePath(options.pidfile);
  const logFile = options.logFile === undefined ? undefined : resolvePath(options.logFile);
  const child = isDaemonChild();
  if (options.daemon && !child) return detach(spec.name, options, logFile);
  // the marker is for us only: a daemon this one starts must be free to detach itself
  if (child) delete process.env[DAEMON_CHILD_ENV];

  const notify = child ? readinessNotifier() : undefined;
  try {
    if (child) {
      // Stevens: do not keep a mounted filesystem busy; files we create get explicit modes
      process.chdir('/');
      process.umask(0o022);
    }
    const running = await startDaemon(spec, { ...options, pidfile: pidfilePath, logFile });
    notify?.('ready');
    return running;
  } catch (err) {
    notify?.(`error ${(err as Error).message}`);
    throw err;
  }
}

function check(spec: DaemonSpec<unknown, DaemonServer>, options: DaemonOptions): void {
  if (typeof spec?.name !== 'string' || spec.name === '') throw new ArgumentError('runDaemon: spec.name is required');
  if (typeof spec.start !== 'function') throw new ArgumentError('runDaemon: spec.start must be a function');
  if (options.graceMs !== undefined && (!Number.isFinite(options.graceMs) || options.graceMs < 0)) {
    throw new ArgumentError(`graceMs must be a non-negative number, got ${options.graceMs}`);
  }
}

async function startDaemon<C, S extends DaemonServer>(spec: DaemonSpec<C, S>, options: DaemonOptions): Promise<RunningDaemon<C, S>> {
  const log = createLog({ name: spec.name, file: options.logFile, silent: options.quiet });
  const ctx: DaemonContext = { name: spec.name, log };
  let pidfile: PidFile | undefined;
  let server: S;
  let config: C;
  let privileges: DroppedPrivileges | undefined;
  try {
    pidfile = options.pidfile === undefined ? undefined : acquirePidFile(options.pidfile);
    config = spec.loadConfig ? await spec.loadConfig() : (undefined as C);
    server = await spec.start(config, ctx);
  } catch (err) {
    pidfile?.release();
    log.error(`cannot start: ${(err as Error).message}`);
    log.close();
    throw err;
  }
  try {
    if (options.user !== undefined) privileges = dropPrivileges(options.user, options.group);
  } catch (err) {
    // never serve as root after the operator asked us not to
    await server.close({ graceMs: 0 });
    pidfile?.release();
    log.error(`cannot start: ${(err as Error).message}`);
    log.close();
    throw err;
  }
  log.info(
    `started${server.description ? `, ${server.description}` : ''}${privileges ? `, running as ${privileges.user} (uid ${privileges.uid})` : ''}${pidfile ? `, pidfile ${pidfile.path}` : ''}`,
  );

  const graceMs = options.graceMs ?? 10_000;
  let stopping: Promise<void> | undefined;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  const handlers: [NodeJS.Signals, () => void][] = [];

  const stop = (reason = 'stop requested'): Promise<void> => {
    stopping ??= (async () => {
      log.info(`${reason}: finishing in-flight requests (up to ${graceMs} ms)`);
      try {
        await server.close({ graceMs });
      } catch (err) {
        log.error(`while closing: ${(err as Error).message}`);
      }
      for (const [sig, h] of handlers) process.removeListener(sig, h);
      pidfile?.release();
      log.info('stopped');
      log.close();
      resolveStopped();
    })();
    return stopping;
  };

  const reload = async (): Promise<void> => {
    try {
      log.reopen();
    } catch (err) {
      log.error(`cannot reopen the log: ${(err as Error).message}`);
    }
    try {
      if (spec.loadConfig) config = await spec.loadConfig();
      await spec.reload?.(server, config, ctx);
      log.info('configuration reloaded');
    } catch (err) {
      // a bad configuration file keeps the old configuration running
      log.error(`reload failed, keeping the previous configuration: ${(err as Error).message}`);
    }
  };

  if (options.handleSignals !== false) {
    const exit = options.exitOnStop !== false;
    const onStop = (sig: NodeJS.Signals) => (): void => {
      if (stopping) {
        log.error(`${sig} again: exiting without waiting`);
        process.exit(1);
      }
      void stop(sig).then(() => {
        if (exit) process.exit(0);
      });
    };
    handlers.push(['SIGTERM', onStop('SIGTERM')], ['SIGINT', onStop('SIGINT')], ['SIGHUP', () => void reload()]);
    for (const [sig, h] of handlers) process.on(sig, h);
  }

  return {
    name: spec.name,
    get server() {
      return server;
    },
    get config() {
      return config;
    },
    log,
    pidfile,
    privileges,
    reload,
    stop,
    stopped,
  };
}

/** In the background copy: report "ready" or "error ..." once on the readiness pipe. */
function readinessNotifier(): (message: string) => void {
  let done = false;
  return (message) => {
    if (done) return;
    done = true;
    try {
      writeSync(READY_FD, `${message.replace(/\n/g, ' ')}\n`);
      closeSync(READY_FD);
    } catch {
      // started by hand with the marker set but no pipe: nothing to tell
    }
  };
}

/**
 * Re-spawn this program detached: setsid() in the child (new session, no
 * controlling terminal), stdin/stdout on /dev/null, stderr on the log file or
 * /dev/null, and a pipe on fd 3 over which it says when it is ready. The
 * parent exits 0 once it is, 1 if it fails, so `switchboard fingerd --daemon
 * && echo ok` means the daemon is listening.
 */
async function detach(name: string, options: DaemonOptions, logFile: string | undefined): Promise<never> {
  const args = options.respawnArgs ?? [...process.execArgv, ...process.argv.slice(1)];
  let errFd: number | 'ignore' = 'ignore';
  if (logFile !== undefined) {
    try {
      errFd = openSync(logFile, 'a', 0o640);
    } catch (err) {
      throw new SwitchboardError('EACCES', `cannot open log file ${logFile}: ${(err as Error).message}`, { cause: err });
    }
  }
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ['ignore', 'ignore', errFd, 'pipe'],
    env: { ...process.env, [DAEMON_CHILD_ENV]: name },
  });
  if (typeof errFd === 'number') closeSync(errFd);
  const timeoutMs = options.readyTimeoutMs ?? 30_000;
  const outcome = await new Promise<string>((resolve) => {
    let text = '';
    const pipe = child.stdio[3] as NodeJS.ReadableStream | null;
    const timer = setTimeout(() => resolve(`error the background copy did not report ready within ${timeoutMs} ms`), timeoutMs);
    pipe?.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      if (text.includes('\n')) {
        clearTimeout(timer);
        resolve(text.trim());
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(text.includes('\n') ? text.trim() : `error the background copy exited (${signal ?? `status ${code}`}) before it was ready`);
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve(`error cannot spawn the background copy: ${err.message}`);
    });
  });
  if (outcome === 'ready') {
    child.unref();
    process.exit(0);
  }
  process.stderr.write(`${name}: ${outcome.replace(/^error /, '')}\n`);
  if (child.exitCode === null) child.kill('SIGTERM');
  process.exit(1);
}
