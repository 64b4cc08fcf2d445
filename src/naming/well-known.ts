/**
 * Exercise 170: how does a process make its first contact with the name
 * service? Through addresses agreed in advance:
 *
 *   1. $SWITCHBOARD_NAMESERVER, if set (one address or a comma-separated list);
 *   2. the Unix socket $XDG_RUNTIME_DIR/switchboard/ns.sock, or, without
 *      XDG_RUNTIME_DIR, /tmp/switchboard-<uid>/ns.sock (a 0700 directory);
 *   3. tcp://127.0.0.1:7117, the service `switchboard-ns` in services(5).
 */
import { lstatSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SwitchboardError } from '../errors.js';
import { resolvePort } from './services.js';

export const NAMESERVER_ENV = 'SWITCHBOARD_NAMESERVER';
export const NAMESERVER_SERVICE = 'switchboard-ns';

function uid(): number {
  return typeof process.getuid === 'function' ? process.getuid() : 0;
}

/** The directory holding the well-known socket (not created). */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_RUNTIME_DIR'];
  if (xdg !== undefined && xdg !== '') return join(xdg, 'switchboard');
  return `/tmp/switchboard-${uid()}`;
}

/** The well-known Unix socket path of the name server. */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(runtimeDir(env), 'ns.sock');
}

/** The well-known TCP address: loopback, port of service switchboard-ns (7117). */
export function defaultTcpAddress(): string {
  let port = 7117;
  try {
    port = resolvePort(NAMESERVER_SERVICE, 'tcp');
  } catch {
    // keep the compiled-in default
  }
  return `tcp://127.0.0.1:${port}`;
}

/** Where the daemon keeps its journal unless told otherwise. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const state = env['XDG_STATE_HOME'];
  return join(state !== undefined && state !== '' ? state : join(homedir(), '.local', 'state'), 'switchboard', 'ns');
}

/**
 * Create (if needed) a private directory for sockets: mode 0700, owned by us.
 * An existing directory owned by someone else or open to others is refused,
 * since whoever controls it could put a fake name server there.
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new SwitchboardError('EACCES', `${dir} is not a directory`);
  if (st.uid !== uid()) throw new SwitchboardError('EACCES', `${dir} belongs to uid ${st.uid}, not to us (uid ${uid()})`);
  if ((st.mode & 0o022) !== 0) throw new SwitchboardError('EACCES', `${dir} is writable by others (mode ${(st.mode & 0o777).toString(8)})`);
}

/** The addresses a client tries, in order. */
export function clientAddresses(explicit?: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const spec = explicit ?? env[NAMESERVER_ENV];
  if (spec !== undefined && spec.trim() !== '') return spec.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return [`unix://${defaultSocketPath(env)}`, defaultTcpAddress()];
}
