/**
 * Inheritance in lieu of naming (seed 12.1): a parent creates pipes and
 * socketpairs, starts a child that inherits one end of each as an extra file
 * descriptor (3, 4, ...), and both sides talk without any name service. The
 * child finds its channels by name in the environment:
 *   SWITCHBOARD_CHANNELS=ctl:3:socketpair,jobs:4:pipe-r   (machine-readable)
 *   SWITCHBOARD_FD_CTL=3  SWITCHBOARD_FD_JOBS=4           (for shell scripts)
 *   SWITCHBOARD_PARENT_PID=1234
 * so a shell child can `read line <&3` as well as a Node child can call
 * inheritedChannels(). Both sides know the other's process id (exercise 168).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { ArgumentError, fromSystemError } from '../errors.js';
import type { Channel } from './channel.js';
import { rawPipe, rawSocketpair, setCloexec } from './fd.js';
import { closeQuietly, fromFd } from './pipes.js';

/**
 * - 'socketpair': two-way channel.
 * - 'pipe-to-child': the parent writes, the child reads.
 * - 'pipe-from-child': the child writes, the parent reads.
 * - { fd }: hand an fd the parent already has (a listening socket, a FIFO, ...); the parent keeps it.
 */
export type ChannelSpec = 'socketpair' | 'pipe-to-child' | 'pipe-from-child' | { fd: number };

export interface SpawnWithChannelsOptions extends Omit<SpawnOptions, 'stdio'> {
  channels: Record<string, ChannelSpec>;
  /** stdin, stdout, stderr of the child (default 'inherit' for all three). */
  stdio?: ['inherit' | 'pipe' | 'ignore', 'inherit' | 'pipe' | 'ignore', 'inherit' | 'pipe' | 'ignore'];
}

export interface ChildWithChannels {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The parent's end of each channel, by name ({fd} specs are not listed). */
  readonly channels: Record<string, Channel>;
  /** Resolves when the child exits. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

type ChildKind = 'socketpair' | 'pipe-r' | 'pipe-w' | 'fd';

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** Start `command` with the given channels inherited as fds 3, 4, ... */
export function spawnWithChannels(command: string, args: readonly string[], options: SpawnWithChannelsOptions): Promise<ChildWithChannels> {
  if (typeof command !== 'string' || command === '') return Promise.reject(new ArgumentError('command must be a non-empty string'));
  const specs = Object.entries(options.channels ?? {});
  for (const [name, spec] of specs) {
    if (!NAME_RE.test(name)) return Promise.reject(new ArgumentError(`channel name "${name}" must be letters, digits and _ (not starting with a digit)`));
    const ok = spec === 'socketpair' || spec === 'pipe-to-child' || spec === 'pipe-from-child' || (typeof spec === 'object' && Number.isInteger(spec?.fd) && spec.fd >= 0);
    if (!ok) return Promise.reject(new ArgumentError(`channel "${name}": unknown spec ${JSON.stringify(spec)}`));
  }

  const parentEnds: { name: string; fd: number; kind: 'socketpair' | 'pipe-r' | 'pipe-w' }[] = [];
  const childFds: number[] = [];
  const toClose: number[] = [];
  const described: string[] = [];
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env), SWITCHBOARD_PARENT_PID: String(process.pid) };
  try {
    specs.forEach(([name, spec], i) => {
      const childFd = 3 + i;
      let kind: ChildKind;
      if (spec === 'socketpair') {
        const [a, b] = rawSocketpair();
        parentEnds.push({ name, fd: a, kind: 'socketpair' });
        childFds.push(b);
        toClose.push(b);
        kind = 'socketpair';
      } else if (spec === 'pipe-to-child') {
        const [r, w] = rawPipe();
        parentEnds.push({ name, fd: w, kind: 'pipe-w' });
        childFds.push(r);
        toClose.push(r);
        kind = 'pipe-r';
      } else if (spec === 'pipe-from-child') {
        const [r, w] = rawPipe();
        parentEnds.push({ name, fd: r, kind: 'pipe-r' });
        childFds.push(w);
        toClose.push(w);
        kind = 'pipe-w';
      } else {
        childFds.push(spec.fd);
        kind = 'fd';
      }
      described.push(`${name}:${childFd}:${kind}`);
      env[`SWITCHBOARD_FD_${name.toUpperCase()}`] = String(childFd);
    });
  } catch (err) {
    for (const p of parentEnds) closeQuietly(p.fd);
    for (const fd of toClose) closeQuietly(fd);
    return Promise.reject(err);
  }
  env['SWITCHBOARD_CHANNELS'] = described.join(',');

  const closeAll = (): void => {
    for (const p of parentEnds) closeQuietly(p.fd);
    for (const fd of toClose) closeQuietly(fd);
  };
  const { channels: _c, stdio, ...spawnOptions } = options;
  let child: ChildProcess;
  try {
    child = spawn(command, args, { ...spawnOptions, env, stdio: [...(stdio ?? ['inherit', 'inherit', 'inherit']), ...childFds] });
  } catch (err) {
    // bad arguments (a NUL byte, a wrong type) throw before any process exists
    closeAll();
    const e = err as NodeJS.ErrnoException;
    return Promise.reject(
      e.code === 'ERR_INVALID_ARG_VALUE' || e.code === 'ERR_INVALID_ARG_TYPE' ? new ArgumentError(`spawn ${command}: ${e.message}`, { cause: err }) : fromSystemError(err, `spawn ${command}`),
    );
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise<ChildWithChannels>((resolve, reject) => {
    let spawned = false;
    // Stays registered: a later 'error' (a failed kill()) must neither crash
    // the process nor close fds that the channels own by then.
    child.on('error', (err) => {
      if (spawned) return;
      closeAll();
      reject(fromSystemError(err, `spawn ${command}`));
    });
    child.once('spawn', () => {
      spawned = true;
      // The child has its copies now; ours must go, or EOF would never come.
      for (const fd of toClose) closeQuietly(fd);
      const pid = child.pid as number;
      const channels: Record<string, Channel> = {};
      for (const p of parentEnds) {
        channels[p.name] = fromFd(p.fd, {
          kind: p.kind === 'socketpair' ? 'socketpair' : 'pipe',
          readable: p.kind !== 'pipe-w',
          writable: p.kind !== 'pipe-r',
          description: `${p.name} (${p.kind}, to child ${pid})`,
          peer: { pid },
        });
      }
      resolve({ child, pid, channels, exited });
    });
  });
}

let inherited: Record<string, Channel> | undefined;

/** The parent's process id if this process was started by spawnWithChannels, else process.ppid. */
export function parentPid(): number {
  const v = Number(process.env['SWITCHBOARD_PARENT_PID']);
  return Number.isInteger(v) && v > 0 ? v : process.ppid;
}

/**
 * In a child started by spawnWithChannels: its channels by name. Calling it
 * again returns the same Channels. Empty when there are none.
 */
export function inheritedChannels(): Record<string, Channel> {
  if (inherited) return inherited;
  const out: Record<string, Channel> = {};
  const spec = process.env['SWITCHBOARD_CHANNELS'] ?? '';
  const pid = parentPid();
  for (const item of spec.split(',').filter(Boolean)) {
    const [name, fdText, kind] = item.split(':');
    const fd = Number(fdText);
    if (name === undefined || !Number.isInteger(fd) || fd < 3) throw new ArgumentError(`malformed SWITCHBOARD_CHANNELS entry "${item}"`);
    if (kind === 'fd') continue; // an fd handed as is: the program knows what it is
    // dup2() into place cleared close-on-exec: set it again, or every process
    // this one starts would hold the channel open too (and EOF would never come)
    setCloexec(fd, true);
    out[name] = fromFd(fd, {
      kind: kind === 'socketpair' ? 'socketpair' : 'pipe',
      readable: kind !== 'pipe-w',
      writable: kind !== 'pipe-r',
      description: `${name} (${kind ?? '?'}, from parent ${pid})`,
      peer: { pid },
    });
  }
  inherited = out;
  return out;
}
