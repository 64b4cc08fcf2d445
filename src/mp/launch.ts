/**
 * The mpirun of Switchboard (`switchboard run -n N app.js`): one job id, a
 * name server the ranks can reach (the one given, a reachable one, or a
 * private one on a temporary socket), N rank processes (or threads) that
 * find each other under `mp/<job>/<rank>`, and a watch on every rank. When a
 * rank dies the others fail with PeerLostError, stragglers are stopped after
 * a grace period, and the result names the rank that failed first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import type { Writable } from 'node:stream';
import { ArgumentError, SwitchboardError } from '../errors.js';
import { PEER_LOST_EXIT, RankFailedError } from './errors.js';
import { ENV, hostAddress, progressFromEnv } from './join.js';
import { moduleUrl, runThreads } from './threads.js';

export interface LaunchOptions {
  n: number;
  app: string;
  args?: string[] | undefined;
  /** Ranks as worker threads of this process instead of processes. */
  threads?: boolean | undefined;
  /**
   * Hosts to place ranks on, round-robin: a network namespace name (started
   * with `ip netns exec`), 'localhost', or an ssh destination.
   */
  hosts?: string[] | undefined;
  /**
   * How processes on one host connect: shared-memory rings ('shm'), Unix
   * sockets, or TCP loopback. Default: rings when the ranks poll (see
   * `progress`) and /dev/shm and the addon are there, else Unix sockets.
   * Across hosts it is always TCP.
   */
  transport?: 'shm' | 'unix' | 'tcp' | undefined;
  /**
   * How a rank's receive waits: 'poll' spins briefly on its links before
   * sleeping (lowest latency when each rank has a core), 'yield' sleeps at
   * once. 'auto' (default): poll when no host runs more ranks than it has
   * cores, as Open MPI's busy polling stops when oversubscribed.
   */
  progress?: 'poll' | 'yield' | 'auto' | undefined;
  /** Extra environment for the ranks. */
  env?: NodeJS.ProcessEnv | undefined;
  /** Name server address(es); default: $SWITCHBOARD_NAMESERVER or the well-known ones if one answers, else a private server. */
  nameServer?: string | undefined;
  /** Default timeout of every blocking operation in the ranks (ms). */
  timeoutMs?: number | undefined;
  /** After the first failure, stop ranks still running after this many ms (default 5000). */
  graceMs?: number | undefined;
  /** Prefix each output line with "[rank] ". */
  tagOutput?: boolean | undefined;
  stdout?: Writable | undefined;
  stderr?: Writable | undefined;
  /** Launcher messages (default: stderr). */
  log?: ((line: string) => void) | undefined;
}

export interface LaunchResult {
  /** 0 when every rank succeeded; otherwise the failed rank's exit status (128+signal when killed). */
  code: number;
  failed?: { rank: number; host?: string | undefined; pid?: number | undefined; reason: string } | undefined;
  /** How the ranks found each other. */
  nameServer: string;
  /** What carried their messages between processes on one host ('port' for threads). */
  transport?: string | undefined;
}

/**
 * glibc settings for rank processes, unless the environment already has
 * some: keep freed memory in the heap for reuse (no trimming, no mmap for
 * big blocks). Every received message is a fresh buffer; without this each
 * one of 64 KiB or more is a new mapping that page-faults as it is filled
 * (measured: a 64 KiB ring round trip spends 60 of its 120 us in the
 * kernel). MPI launchers do the same with their own memory hooks.
 */
export function mallocTuning(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (Object.keys(env).some((k) => k.startsWith('MALLOC_') && k.endsWith('_'))) return {};
  return { MALLOC_MMAP_THRESHOLD_: String(32 << 20), MALLOC_TRIM_THRESHOLD_: String(256 << 20), MALLOC_TOP_PAD_: String(16 << 20) };
}

/** One word for a POSIX shell: as it is when it has nothing the shell reads, else in single quotes. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The command line a rank started over ssh runs: in `cwd`, with `env` (NAME=value), then `argv`. */
export function remoteCommand(cwd: string, env: readonly string[], argv: readonly string[]): string {
  return ['cd', shellWord(cwd), '&&', 'exec', 'env', ...env.map(shellWord), ...argv.map(shellWord)].join(' ');
}

/** 'poll' when no host runs more ranks than this machine has cores (hosts are assumed alike). */
export function progressFor(mode: LaunchOptions['progress'], ranks: number, hostCount: number): 'poll' | 'yield' {
  if (mode === 'poll' || mode === 'yield') return mode;
  return Math.ceil(ranks / Math.max(1, hostCount)) <= availableParallelism() ? 'poll' : 'yield';
}

function entryFile(): string {
  const js = fileURLToPath(new URL('./process-entry.js', import.meta.url));
  return existsSync(js) ? js : fileURLToPath(new URL('./process-entry.ts', import.meta.url));
}

async function reachableNameServer(): Promise<string | undefined> {
  const { NameClient } = await import('../naming/index.js');
  const { NAMESERVER_ENV, defaultSocketPath, defaultTcpAddress } = await import('../naming/well-known.js');
  const address = process.env[NAMESERVER_ENV] || `unix://${defaultSocketPath()},${defaultTcpAddress()}`;
  try {
    const c = await NameClient.connect({ address, timeoutMs: 1000, reconnect: false, clientName: 'switchboard run' });
    await c.close();
    return address;
  } catch {
    return undefined;
  }
}

/** Whether shared-memory rings work here (the sb_shm addon loads and /dev/shm is usable). */
async function shmAvailable(): Promise<boolean> {
  try {
    const shm = await import('../shm/index.js');
    shm.listRegions();
    shm.threadId();
    return true;
  } catch {
    return false;
  }
}

/** Streams whose reader went away (EPIPE: `switchboard run ... | head`): rank output to them is dropped, and the job runs on. */
const closedOutputs = new WeakSet<Writable>();
const watchedOutputs = new WeakSet<Writable>();

function lineWriter(out: Writable, prefix: string): (chunk: Buffer) => void {
  if (!watchedOutputs.has(out)) {
    watchedOutputs.add(out);
    out.on('error', () => closedOutputs.add(out));
  }
  const write = (data: Buffer | string): void => {
    if (!closedOutputs.has(out)) out.write(data);
  };
  if (prefix === '') return (chunk) => write(chunk);
  let rest = '';
  return (chunk) => {
    const text = rest + chunk.toString('utf8');
    const lines = text.split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) write(`${prefix}${l}\n`);
  };
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): { status: number; reason: string } {
  if (signal !== null) return { status: 128 + (osConstants.signals[signal] ?? 0), reason: `killed by ${signal}` };
  return { status: code ?? 1, reason: code === PEER_LOST_EXIT ? 'failed after losing a peer' : `exited with code ${code}` };
}

export async function launch(o: LaunchOptions): Promise<LaunchResult> {
  const { n, app } = o;
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new ArgumentError(`-n must be 1..1024, got ${String(n)}`);
  const log = o.log ?? ((l: string) => void process.stderr.write(`switchboard run: ${l}\n`));
  const graceMs = o.graceMs ?? 5000;
  if (o.threads) {
    if (o.hosts !== undefined) throw new ArgumentError('--threads and --hosts do not go together');
    try {
      await runThreads(n, moduleUrl(app), { graceMs, timeoutMs: o.timeoutMs, argv: o.args ?? [] });
      return { code: 0, nameServer: 'none (threads)' };
    } catch (err) {
      if (!(err instanceof RankFailedError)) throw err;
      log(`rank ${err.rank} died: ${err.message}`);
      return { code: 1, failed: { rank: err.rank, reason: err.message }, nameServer: 'none (threads)' };
    }
  }

  const job = randomBytes(6).toString('hex');
  const tmp = mkdtempSync(join(tmpdir(), 'sbmp-'));
  const hosts = o.hosts;
  let server: { close(): Promise<void>; addresses: string[] } | undefined;
  const children: { child: ChildProcess; host: string | undefined; done: boolean }[] = [];
  let grace: NodeJS.Timeout | undefined;
  let kill: NodeJS.Timeout | undefined;
  try {
    let ns = o.nameServer ?? (hosts === undefined ? await reachableNameServer() : undefined);
    if (ns === undefined) {
      const { startNameServer } = await import('../naming/index.js');
      server = await startNameServer({ listen: [hosts === undefined ? `unix://${join(tmp, 'ns.sock')}` : `tcp://${hostAddress()}:0`], graceMs: 0 });
      ns = server.addresses.join(',');
    }
    // One host, polling: shared-memory rings when this machine has them (fastest there); yielding
    // ranks sleep between messages, and a Unix socket wakes them sooner than a ring's futex.
    const progress = progressFromEnv({ ...process.env, ...o.env }) ?? progressFor(o.progress, n, hosts?.length ?? 1);
    const transport = hosts !== undefined ? 'tcp' : (o.transport ?? (progress === 'poll' && (await shmAvailable()) ? 'shm' : 'unix'));
    if (transport === 'shm' && !(await shmAvailable())) throw new SwitchboardError('EUNSUPPORTED', 'shared-memory rings are not available here (the sb_shm addon or /dev/shm)');
    const entry = entryFile();
    const nodeArgs = [...process.execArgv, entry, app, ...(o.args ?? [])];
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      [ENV.job]: job,
      [ENV.size]: String(n),
      [ENV.nameServer]: ns,
      [ENV.sockDir]: tmp,
      ...o.env,
      ...(hosts !== undefined
        ? { [ENV.tcpHost]: 'auto' }
        : transport === 'tcp'
          ? { [ENV.tcpHost]: '127.0.0.1' }
          : transport === 'shm'
            ? { [ENV.transport]: 'shm' }
            : {}),
      ...(o.timeoutMs !== undefined ? { [ENV.timeout]: String(o.timeoutMs) } : {}),
    };
    env[ENV.progress] = progress;
    // Each rank's stdin is a pipe from here, never written: when this launcher dies (even by
    // SIGKILL), every pipe ends and the ranks stop, over ssh too (ssh forwards its stdin).
    env[ENV.lifeline] = '1';
    Object.assign(env, mallocTuning(env));
    const failures: { rank: number; status: number; reason: string; secondary: boolean }[] = [];
    const exits: Promise<void>[] = [];
    for (let rank = 0; rank < n; rank++) {
      const host = hosts?.[rank % hosts.length];
      const rankEnv = { ...env, [ENV.rank]: String(rank) };
      let child: ChildProcess;
      const stdio: ['pipe', 'pipe', 'pipe'] = ['pipe', 'pipe', 'pipe'];
      if (host === undefined || host === 'localhost') {
        child = spawn(process.execPath, nodeArgs, { env: rankEnv, stdio });
      } else if (existsSync(`/var/run/netns/${host}`)) {
        child = spawn('ip', ['netns', 'exec', host, process.execPath, ...nodeArgs], { env: rankEnv, stdio });
      } else {
        // ssh hands the remote shell one command line: every word quoted, run from the directory
        // the launcher runs in (as mpirun does: the hosts are expected to share the paths).
        const pairs = Object.entries(rankEnv)
          .filter(([k]) => k.startsWith('SWITCHBOARD_'))
          .map(([k, v]) => `${k}=${String(v)}`);
        child = spawn('ssh', ['-o', 'BatchMode=yes', host, remoteCommand(process.cwd(), pairs, [process.execPath, ...nodeArgs])], { stdio });
      }
      const entryRec = { child, host, done: false };
      children.push(entryRec);
      const prefix = o.tagOutput ? `[${rank}] ` : '';
      child.stdout?.on('data', lineWriter(o.stdout ?? process.stdout, prefix));
      child.stderr?.on('data', lineWriter(o.stderr ?? process.stderr, prefix));
      exits.push(
        new Promise<void>((resolve) => {
          child.once('error', (err) => {
            failures.push({ rank, status: 127, reason: `could not start: ${err.message}`, secondary: false });
            entryRec.done = true;
            resolve();
          });
          child.once('close', (code, signal) => {
            entryRec.done = true;
            if (code !== 0 || signal !== null) {
              const d = describeExit(code, signal);
              failures.push({ rank, status: d.status, reason: d.reason, secondary: code === PEER_LOST_EXIT });
              grace ??= setTimeout(() => {
                for (const c of children) if (!c.done) c.child.kill('SIGTERM');
                kill = setTimeout(() => {
                  for (const c of children) if (!c.done) c.child.kill('SIGKILL');
                }, 2000);
              }, graceMs);
            }
            resolve();
          });
        }),
      );
    }
    await Promise.all(exits);
    if (failures.length === 0) return { code: 0, nameServer: ns, transport };
    const first = failures.find((f) => !f.secondary) ?? failures[0]!;
    const c = children[first.rank]!;
    const where = c.host === undefined ? '' : ` on ${c.host}`;
    log(`rank ${first.rank} (pid ${c.child.pid ?? '?'}${where}) died: ${first.reason}${failures.length > 1 ? `; ${failures.length - 1} other rank(s) failed after it` : ''}`);
    return { code: first.status === 0 ? 1 : first.status, failed: { rank: first.rank, host: c.host, pid: c.child.pid, reason: first.reason }, nameServer: ns, transport };
  } finally {
    if (grace !== undefined) clearTimeout(grace);
    if (kill !== undefined) clearTimeout(kill);
    for (const c of children) if (!c.done) c.child.kill('SIGKILL');
    await server?.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}
