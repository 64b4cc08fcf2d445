/**
 * A process joins its job: listen on a fresh address, publish it under
 * `mp/<job>/<rank>`, connect to every lower rank (found through the
 * directory) and accept every higher one, each connection opened with a
 * HELLO frame naming job and rank. Once all N-1 peers are connected the
 * name is withdrawn (nobody needs it any more) and the ranks talk directly.
 */
import os from 'node:os';
import { join as joinPath } from 'node:path';
import { connect, formatAddress, listen, type Channel, type Listener } from '../transport/index.js';
import type { ShmListener } from '../shm/index.js';
import { lengthHeader } from '../wire/length-prefix.js';
import { ArgumentError, SwitchboardError, TimeoutError } from '../errors.js';
import { DEFAULT_MAX_MESSAGE, Communicator, type CommunicatorOptions } from './communicator.js';
import { FileDirectory, NameServiceDirectory, rankName, type Directory } from './directory.js';
import { Engine } from './engine.js';
import { decodeHello, encodeHello } from './frame.js';
import { StreamLink, newDecoder, type PeerStream } from './stream-link.js';

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Bytes a connection may buffer before the sender is held back: large, so big messages stream without pausing. */
const READ_BUFFER = 8 * 1024 * 1024;

export interface JoinOptions extends CommunicatorOptions {
  job: string;
  rank: number;
  size: number;
  directory: Directory;
  /**
   * Listen here: 'unix:///path.sock', 'tcp://host:0', or 'shm:<prefix>' for
   * shared-memory rings (one ring pair per pair of ranks, named
   * <prefix>-<lower>-<higher>; every rank must be on this host).
   */
  listen: string;
  /** Data bytes of each shared-memory ring (default 1 MiB). */
  ringCapacity?: number | undefined;
  /** Give up when the mesh is not complete within this many ms (default 30000). */
  connectTimeoutMs?: number | undefined;
  fragmentSize?: number | undefined;
}

/** The HELLO message of a message channel (a ring). */
async function readHelloMessage(ch: Channel, timeoutMs: number): Promise<ReturnType<typeof decodeHello>> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const first = await Promise.race([
      ch.read(),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new TimeoutError('no HELLO from a connecting rank')), timeoutMs))),
    ]);
    if (first === null) throw new SwitchboardError('ECONNRESET', 'a connecting rank closed before its HELLO');
    return decodeHello(first);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

async function readHello(ch: Channel, timeoutMs: number): Promise<PeerStream & { hello: ReturnType<typeof decodeHello> }> {
  const decoder = newDecoder();
  const timer = setTimeout(() => ch.destroy(new TimeoutError('no HELLO from a connecting rank')), timeoutMs);
  try {
    for (;;) {
      const f = decoder.next();
      if (f !== undefined) return { channel: ch, decoder, hello: decodeHello(f) };
      const chunk = await ch.read();
      if (chunk === null) throw new SwitchboardError('ECONNRESET', 'a connecting rank closed before its HELLO');
      decoder.push(chunk);
    }
  } finally {
    clearTimeout(timer);
  }
}

export async function joinJob(o: JoinOptions): Promise<Communicator> {
  const { job, rank, size, directory } = o;
  if (!Number.isInteger(size) || size < 1) throw new ArgumentError(`bad job size ${size}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= size) throw new ArgumentError(`bad rank ${rank} for a job of ${size}`);
  const timeoutMs = o.connectTimeoutMs ?? 30_000;
  const peers: (PeerStream | null)[] = new Array<PeerStream | null>(size).fill(null);
  const max = o.maxMessageSize ?? DEFAULT_MAX_MESSAGE;
  let listener: Listener | undefined;
  const opened: Channel[] = [];
  const myName = rankName(job, rank);
  let timer: NodeJS.Timeout | undefined;
  const shmPrefix = o.listen.startsWith('shm:') ? o.listen.slice(4) : undefined;
  const rings: ShmListener[] = [];
  try {
    const expectIn = size - 1 - rank;
    if (shmPrefix !== undefined) {
      const { listenShm } = await import('../shm/index.js');
      for (let i = rank + 1; i < size; i++) {
        rings.push(await listenShm(`shm:${shmPrefix}-${rank}-${i}`, { capacity: o.ringCapacity ?? 1 << 20, maxMessageSize: max + 64 }));
      }
      if (expectIn > 0) await directory.register(myName, `shm:${shmPrefix}-${rank}`);
    }
    if (expectIn > 0 && shmPrefix === undefined) {
      listener = await listen(o.listen, { mode: 0o600, readHighWaterMark: READ_BUFFER });
      await directory.register(myName, formatAddress(listener.address));
    }
    const acceptRings = async (): Promise<void> => {
      await Promise.all(
        rings.map(async (l, k) => {
          const ch = await l.accept({ timeoutMs });
          opened.push(ch);
          const h = await readHelloMessage(ch, timeoutMs);
          const want = rank + 1 + k;
          if (h.job !== job || h.size !== size || h.rank !== want) throw new SwitchboardError('EPROTO', `ring ${formatAddress(l.address)}: HELLO from rank ${h.rank} of job ${h.job}, expected rank ${want} of ${job}`);
          peers[want] = { channel: ch };
        }),
      );
      if (expectIn > 0) await directory.unregister(myName);
    };
    const accepting = shmPrefix !== undefined ? acceptRings() : (async () => {
      let got = 0;
      while (got < expectIn) {
        const ch = await (listener as Listener).accept();
        opened.push(ch);
        let p;
        try {
          p = await readHello(ch, timeoutMs);
        } catch {
          ch.destroy();
          continue;
        }
        const h = p.hello;
        if (h.job !== job || h.size !== size || h.rank <= rank || h.rank >= size || peers[h.rank] !== null) {
          ch.destroy();
          continue;
        }
        peers[h.rank] = { channel: p.channel, decoder: p.decoder };
        got++;
      }
      if (expectIn > 0) await directory.unregister(myName);
    })();
    const connecting = Promise.all(
      range(rank).map(async (j) => {
        const addr = await directory.waitFor(rankName(job, j), timeoutMs);
        const hello = encodeHello(rank, size, job);
        if (addr.startsWith('shm:')) {
          const { connectShm } = await import('../shm/index.js');
          const ch = await connectShm(`${addr}-${rank}`, { maxMessageSize: max + 64 });
          opened.push(ch);
          await ch.write(hello);
          peers[j] = { channel: ch };
          return;
        }
        const ch = await connect(addr, { timeoutMs, readHighWaterMark: READ_BUFFER });
        opened.push(ch);
        await ch.writev([lengthHeader(hello.byteLength), hello]);
        peers[j] = { channel: ch, decoder: newDecoder(o.fragmentSize) };
      }),
    );
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const missing = range(size).filter((j) => j !== rank && peers[j] === null);
        reject(new TimeoutError(`rank ${rank} of job ${job}: ranks ${missing.join(', ')} not connected within ${timeoutMs} ms (${directory.description})`));
      }, timeoutMs);
    });
    await Promise.race([Promise.all([accepting, connecting]), deadline]);
  } catch (err) {
    for (const ch of opened) ch.destroy();
    for (const l of rings) await l.close().catch(() => undefined);
    await directory.unregister(myName).catch(() => undefined);
    await listener?.close({ graceMs: 0 });
    throw err;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
  const link = new StreamLink(rank, peers, {
    maxMessageSize: max,
    fragmentSize: o.fragmentSize,
    // The ring's largest record is a quarter of its capacity; 16 bytes go to its record header.
    ringRecordLimit: (o.ringCapacity ?? 1 << 20) / 4 - 16,
    onClose: async () => {
      for (const l of rings) await l.close().catch(() => undefined);
      await listener?.close({ graceMs: 1000 });
      await directory.close();
    },
  });
  return new Communicator(new Engine(link), range(size), 0, o);
}

/** The first non-loopback IPv4 address of this host (its address on the test network), else 127.0.0.1. */
export function hostAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** Environment set by `switchboard run` for each rank process. */
export const ENV = {
  job: 'SWITCHBOARD_MP_JOB',
  rank: 'SWITCHBOARD_MP_RANK',
  size: 'SWITCHBOARD_MP_SIZE',
  nameServer: 'SWITCHBOARD_NAMESERVER',
  dir: 'SWITCHBOARD_MP_DIR',
  sockDir: 'SWITCHBOARD_MP_SOCKDIR',
  tcpHost: 'SWITCHBOARD_MP_TCP_HOST',
  /** 'shm' makes ranks of one host talk over shared-memory rings. */
  transport: 'SWITCHBOARD_MP_TRANSPORT',
  timeout: 'SWITCHBOARD_MP_TIMEOUT_MS',
  /** 'poll' (spin before sleeping) or 'yield' (sleep at once): see CommunicatorOptions.progress. */
  progress: 'SWITCHBOARD_MP_PROGRESS',
  spinUs: 'SWITCHBOARD_MP_SPIN_US',
  maxMessage: 'SWITCHBOARD_MP_MAX_MESSAGE',
  /** '1': the rank's stdin is a pipe from its launcher, held open for the job; its end means the launcher is gone. */
  lifeline: 'SWITCHBOARD_MP_LIFELINE',
} as const;

function num(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new ArgumentError(`${name}=${v} is not a number`);
  return n;
}

/** The progress mode in an environment (SWITCHBOARD_MP_PROGRESS): undefined when unset, EINVAL when unknown. */
export function progressFromEnv(env: NodeJS.ProcessEnv = process.env): 'poll' | 'yield' | undefined {
  const v = env[ENV.progress];
  if (v === undefined || v === '') return undefined;
  if (v !== 'poll' && v !== 'yield') throw new ArgumentError(`${ENV.progress}=${v}: expected poll or yield`);
  return v;
}

export async function joinJobFromEnv(options: CommunicatorOptions = {}): Promise<Communicator> {
  const env = process.env;
  const job = env[ENV.job] as string;
  const rank = num(ENV.rank);
  const size = num(ENV.size);
  if (rank === undefined || size === undefined) throw new ArgumentError(`${ENV.rank} and ${ENV.size} must be set with ${ENV.job}`);
  const ns = env[ENV.nameServer];
  const dir = env[ENV.dir];
  let directory: Directory;
  if (ns !== undefined && ns !== '') directory = await NameServiceDirectory.connect(ns, `mp ${job} rank ${rank}`);
  else if (dir !== undefined && dir !== '') directory = new FileDirectory(dir);
  else throw new ArgumentError(`set ${ENV.nameServer} (a name server address) or ${ENV.dir} so the ranks can find each other`);
  const tcpHost = env[ENV.tcpHost];
  const sockDir = env[ENV.sockDir] ?? os.tmpdir();
  const listenAt = env[ENV.transport] === 'shm' ? `shm:sbmp-${job}` : tcpHost !== undefined && tcpHost !== '' ? `tcp://${tcpHost === 'auto' ? hostAddress() : tcpHost}:0` : `unix://${joinPath(sockDir, `${job}-${rank}.sock`)}`;
  return joinJob({
    job,
    rank,
    size,
    directory,
    listen: listenAt,
    timeoutMs: options.timeoutMs ?? num(ENV.timeout),
    maxMessageSize: options.maxMessageSize ?? num(ENV.maxMessage),
    ...(options.allreduceRingBytes === undefined ? {} : { allreduceRingBytes: options.allreduceRingBytes }),
    ...(options.bcastLargeBytes === undefined ? {} : { bcastLargeBytes: options.bcastLargeBytes }),
    progress: options.progress ?? progressFromEnv(),
    spinUs: options.spinUs ?? num(ENV.spinUs),
  });
}
