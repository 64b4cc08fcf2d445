/**
 * The finger daemon (RFC 1288 over the transport layer): one query line per
 * connection, one answer, close. Every resource a stranger can make us spend
 * is bounded: the query's length and the time to send it, the connection's
 * lifetime, the number of connections at once, the names per query, the
 * bytes and lines read from each user file, and the bytes relayed when
 * forwarding (off by default, with a hop limit when on).
 */
import { ArgumentError, ProtocolError, TimeoutError } from '../../errors.js';
import { resolvePort } from '../../naming/services.js';
import { formatAddress, listen, type Address, type Channel, type Listener } from '../../transport/index.js';
import { fingerQuery } from '../finger-client.js';
import { escapeControls, formatLongList, formatShort } from './format.js';
import type { HomeFileLimits } from './home-files.js';
import { forwardedQuery, parseQuery, type FingerQuery } from './query.js';
import { DirectoryUserSource, SystemUserSource, type FingerUser, type UserSource } from './users.js';

/** RFC 1288 3.2.1: a host that does not forward says so. */
export const FORWARDING_DENIED = 'Finger forwarding service denied.';
export const LISTING_DENIED = 'Finger online user list denied.';

export interface FingerdOptions {
  /** Address to bind (default 0.0.0.0, every interface, as fingerd always has). */
  host?: string | undefined;
  /** Port number or service name (default "finger", 79 from /etc/services). */
  port?: number | string | undefined;
  /** Serve the fake users of this directory instead of the system's. */
  usersDir?: string | undefined;
  /** Answer {C} (who is logged in); false refuses it (default true). */
  allowList?: boolean | undefined;
  /** Match names against real names too, as netkit does (default true). */
  matchNames?: boolean | undefined;
  /** Forward {U}@{H} queries (default false: refused). */
  forwarding?: boolean | undefined;
  /** Most hosts in a forwarded query (default 1). */
  maxHops?: number | undefined;
  /** Port to forward to (default "finger"). */
  forwardPort?: number | string | undefined;
  /** Longest query line in bytes, CRLF included (default 1024). */
  maxQueryBytes?: number | undefined;
  /** Most names in one query (default 8). */
  maxUsers?: number | undefined;
  /** Most users in one answer (default 32). */
  maxMatches?: number | undefined;
  /** Time allowed to send the query line (default 10 s). */
  queryTimeoutMs?: number | undefined;
  /** Longest a connection may live, answer included (default 30 s). */
  connectionTimeoutMs?: number | undefined;
  /** Connections served at once; more are closed at once (default 64). */
  maxConnections?: number | undefined;
  /** Bytes relayed from a forwarded query (default 64 KiB). */
  maxForwardBytes?: number | undefined;
  /** Limits on each home file. */
  fileLimits?: HomeFileLimits | undefined;
  /** System data paths (tests point them at fakes). */
  utmpPath?: string | undefined;
  wtmpPath?: string | undefined;
  lastlogPath?: string | undefined;
  mailDir?: string | undefined;
  devDir?: string | undefined;
  passwdFile?: string | undefined;
  /** Time zone of printed dates (default: the process's). */
  timeZone?: string | undefined;
  /** One line per query. */
  log?: ((line: string) => void) | undefined;
}

export interface FingerdStats {
  queries: number;
  refused: number;
  tooLong: number;
  timedOut: number;
  errors: number;
}

function positive(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v <= 0) throw new ArgumentError(`${name} must be a positive number, got ${v}`);
  return v;
}

interface Settings {
  allowList: boolean;
  matchNames: boolean;
  forwarding: boolean;
  maxHops: number;
  forwardPort: number;
  maxQueryBytes: number;
  maxUsers: number;
  maxMatches: number;
  queryTimeoutMs: number;
  connectionTimeoutMs: number;
  maxForwardBytes: number;
  timeZone: string | undefined;
}

function settingsFrom(o: FingerdOptions): Settings {
  return {
    allowList: o.allowList ?? true,
    matchNames: o.matchNames ?? true,
    forwarding: o.forwarding ?? false,
    maxHops: positive('maxHops', o.maxHops, 1),
    forwardPort: resolvePort(o.forwardPort ?? 'finger', 'tcp'),
    maxQueryBytes: positive('maxQueryBytes', o.maxQueryBytes, 1024),
    maxUsers: positive('maxUsers', o.maxUsers, 8),
    maxMatches: positive('maxMatches', o.maxMatches, 32),
    queryTimeoutMs: positive('queryTimeoutMs', o.queryTimeoutMs, 10_000),
    connectionTimeoutMs: positive('connectionTimeoutMs', o.connectionTimeoutMs, 30_000),
    maxForwardBytes: positive('maxForwardBytes', o.maxForwardBytes, 64 * 1024),
    timeZone: o.timeZone,
  };
}

function sourceFrom(o: FingerdOptions): UserSource {
  if (o.usersDir !== undefined) return new DirectoryUserSource(o.usersDir, o.fileLimits ?? {});
  return new SystemUserSource({
    passwdFile: o.passwdFile,
    utmpPath: o.utmpPath,
    wtmpPath: o.wtmpPath,
    lastlogPath: o.lastlogPath,
    mailDir: o.mailDir,
    devDir: o.devDir,
    limits: o.fileLimits,
  });
}

/** The protocol without the sockets: a query line in, the answer text (LF line ends) out. */
export class FingerService {
  #settings: Settings;
  #source: UserSource;

  constructor(options: FingerdOptions = {}) {
    this.#settings = settingsFrom(options);
    this.#source = sourceFrom(options);
  }

  /** Apply new options (SIGHUP); connections in flight keep the old ones. */
  configure(options: FingerdOptions): void {
    const s = settingsFrom(options);
    this.#source = sourceFrom(options);
    this.#settings = s;
  }

  get settings(): Readonly<Settings> {
    return this.#settings;
  }

  /** Answer one query line (without its CRLF). `summary` receives a short outcome for the log. */
  async answer(line: string, summary: (s: string) => void = () => {}): Promise<string> {
    const s = this.#settings;
    let q: FingerQuery;
    try {
      q = parseQuery(line, { maxUsers: s.maxUsers });
    } catch (err) {
      summary(`bad query (${(err as Error).message})`);
      return `finger: ${(err as Error).message}.\n`;
    }
    const now = Date.now() / 1000;
    const fmt = { now, timeZone: s.timeZone };
    if (q.hosts.length > 0) return this.#forward(q, summary);
    if (q.users.length === 0) {
      if (!s.allowList) {
        summary('list refused');
        return `${LISTING_DENIED}\n`;
      }
      const users = (await this.#source.loggedIn()).slice(0, s.maxMatches);
      summary(`list, ${users.length} users`);
      return q.verbose ? (users.length === 0 ? 'No one logged on.\n' : formatLongList(users, fmt)) : formatShort(users, fmt);
    }
    const found: FingerUser[] = [];
    const missing: string[] = [];
    for (const name of q.users) {
      const hits = await this.#source.find(name, { matchNames: s.matchNames });
      if (hits.length === 0) missing.push(name);
      for (const h of hits) if (found.length < s.maxMatches && !found.some((f) => f.login === h.login)) found.push(h);
    }
    summary(`${found.length} match${found.length === 1 ? '' : 'es'}${missing.length ? `, ${missing.length} unknown` : ''}`);
    let text = formatLongList(found, fmt);
    for (const m of missing) text += `finger: ${escapeControls(m)}: no such user.\n`;
    return text;
  }

  async #forward(q: FingerQuery, summary: (s: string) => void): Promise<string> {
    const s = this.#settings;
    if (!s.forwarding) {
      summary('forwarding refused');
      return `${FORWARDING_DENIED}\n`;
    }
    if (q.hosts.length > s.maxHops) {
      summary(`forwarding refused: ${q.hosts.length} hops`);
      return `finger: too many hops (at most ${s.maxHops}).\n`;
    }
    const fwd = forwardedQuery(q);
    if (fwd === undefined) return `${FORWARDING_DENIED}\n`;
    try {
      const bytes = await fingerQuery({
        host: fwd.host,
        port: s.forwardPort,
        query: fwd.line,
        timeoutMs: Math.min(s.connectionTimeoutMs, 10_000),
        maxBytes: s.maxForwardBytes,
      });
      summary(`forwarded to ${fwd.host}, ${bytes.length} bytes`);
      const text = new TextDecoder().decode(bytes).replace(/\r\n/g, '\n');
      return `[${escapeControls(fwd.host)}]\n${escapeControls(text)}${text.endsWith('\n') || text === '' ? '' : '\n'}`;
    } catch (err) {
      summary(`forwarding to ${fwd.host} failed: ${(err as Error).message}`);
      return `finger: ${escapeControls(fwd.host)}: ${escapeControls((err as Error).message)}\n`;
    }
  }
}

export interface FingerDaemon {
  readonly address: Address;
  readonly listener: Listener;
  readonly service: FingerService;
  readonly stats: Readonly<FingerdStats>;
  readonly description: string;
  /** Apply reloaded options (the listening address does not change). */
  configure(options: FingerdOptions): void;
  /** Stop accepting; answers in progress get up to graceMs. */
  close(options?: { graceMs?: number }): Promise<void>;
}

const encoder = new TextEncoder();

function peerOf(ch: Channel): string {
  const i = ch.description.lastIndexOf('<- ');
  return i >= 0 ? ch.description.slice(i + 3) : ch.description;
}

/** Printable, bounded rendering of a query for the log. */
function logQuery(q: string): string {
  return JSON.stringify(escapeControls(q.length > 80 ? `${q.slice(0, 80)}...` : q));
}

/** Read up to the first line end, within the byte and time limits. */
async function readQueryLine(ch: Channel, maxBytes: number): Promise<{ line: string } | { tooLong: true } | { eof: true }> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const chunk = await ch.read();
    if (chunk === null) {
      // a line without CRLF, then EOF: lenient, answer what was sent
      if (size === 0) return { eof: true };
      return { line: Buffer.concat(chunks).toString('utf8') };
    }
    const nl = chunk.indexOf(0x0a);
    const take = nl >= 0 ? chunk.subarray(0, nl) : chunk;
    if (size + take.length > maxBytes) return { tooLong: true };
    chunks.push(take);
    size += take.length;
    if (nl >= 0) return { line: Buffer.concat(chunks).toString('utf8').replace(/\r$/, '') };
  }
}

/** Wait briefly for the client to finish sending, so closing does not reset the connection and lose our answer. */
async function linger(ch: Channel, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  const timer = setTimeout(() => ch.destroy(), ms);
  try {
    while (Date.now() < deadline) if ((await ch.read()) === null) break;
  } catch {
    // destroyed by the timer or reset by the peer
  } finally {
    clearTimeout(timer);
  }
}

/** Start serving. Binding happens here, so privileges can be dropped right after. */
export async function startFingerd(options: FingerdOptions = {}): Promise<FingerDaemon> {
  const service = new FingerService(options);
  const log = options.log ?? (() => {});
  const host = options.host ?? '0.0.0.0';
  const port = resolvePort(options.port ?? 'finger', 'tcp');
  const maxConnections = positive('maxConnections', options.maxConnections, 64);
  const stats: FingerdStats = { queries: 0, refused: 0, tooLong: 0, timedOut: 0, errors: 0 };
  const inFlight = new Set<Promise<void>>();

  const serve = async (ch: Channel): Promise<void> => {
    const s = service.settings;
    const started = Date.now();
    const peer = peerOf(ch);
    let phase: 'query' | 'answer' = 'query';
    let timedOut: string | undefined;
    const cut = (why: string): void => {
      if (timedOut !== undefined || ch.isClosed) return;
      timedOut = why;
      stats.timedOut++;
      log(`${peer}: ${why}, closed`);
      ch.destroy(new TimeoutError(why));
    };
    const queryTimer = setTimeout(() => {
      if (phase === 'query') cut(`no query within ${s.queryTimeoutMs} ms`);
    }, s.queryTimeoutMs);
    const lifeTimer = setTimeout(() => cut(`connection time limit (${s.connectionTimeoutMs} ms)`), s.connectionTimeoutMs);
    try {
      const got = await readQueryLine(ch, s.maxQueryBytes);
      phase = 'answer';
      clearTimeout(queryTimer);
      if ('eof' in got) {
        log(`${peer}: closed without a query`);
        return;
      }
      if ('tooLong' in got) {
        stats.tooLong++;
        log(`${peer}: query longer than ${s.maxQueryBytes} bytes, refused`);
        await ch.write(encoder.encode('finger: query too long.\r\n'));
        await ch.end();
        await linger(ch, 1000);
        return;
      }
      stats.queries++;
      let outcome = '';
      const text = await service.answer(got.line, (o) => (outcome = o));
      const wire = encoder.encode(text.replace(/\n/g, '\r\n'));
      await ch.write(wire);
      await ch.end();
      log(`${peer}: query ${logQuery(got.line)}: ${outcome}, ${wire.length} bytes, ${Date.now() - started} ms`);
      await linger(ch, 1000);
    } catch (err) {
      if (timedOut !== undefined) {
        // counted and logged by cut()
      } else if (!(err instanceof ProtocolError)) {
        stats.errors++;
        log(`${peer}: ${(err as Error).message}`);
      }
    } finally {
      clearTimeout(queryTimer);
      clearTimeout(lifeTimer);
      ch.destroy();
    }
  };

  const listener = await listen(
    { transport: 'tcp', host, port },
    {
      maxConnections,
      onConnection: (ch) => {
        const p = serve(ch).finally(() => inFlight.delete(p));
        inFlight.add(p);
      },
    },
  );
  const address = listener.address;
  const description = `listening on ${formatAddress(address)}`;
  return {
    address,
    listener,
    service,
    description,
    get stats() {
      return { ...stats, refused: listener.refused };
    },
    configure: (o) => service.configure(o),
    async close(opts = {}) {
      await listener.close({ graceMs: opts.graceMs ?? 5000 });
      await Promise.allSettled([...inFlight]);
    },
  };
}
