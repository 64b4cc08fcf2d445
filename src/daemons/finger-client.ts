/**
 * The finger client (RFC 1288): connect to port 79, send one query line,
 * read the answer until the server closes. The output is made terminal-safe
 * the way the Debian (netkit) client does it: CRLF and lone CR become LF,
 * control characters are shown in caret notation (^G, ^?), bytes 0x80-0x9f
 * as M-^X; tab, newline and other bytes pass through.
 */
import { ArgumentError, TimeoutError } from '../errors.js';
import { resolvePort } from '../naming/services.js';
import { connect } from '../transport/index.js';

export interface FingerTarget {
  /** What goes before the last '@': a user, several, "" or a forwarding chain "u@h1". */
  query: string;
  host: string;
  port: number;
}

/**
 * Parse `[user]@host[:port]` (the host may be [IPv6]); the query is
 * everything before the last '@'. Without an '@' the host is localhost.
 */
export function parseFingerTarget(text: string, defaultPort: number | string = 'finger'): FingerTarget {
  const at = text.lastIndexOf('@');
  const query = at >= 0 ? text.slice(0, at) : text;
  let hostPart = at >= 0 ? text.slice(at + 1) : 'localhost';
  if (hostPart === '') throw new ArgumentError(`"${text}": empty host after @`);
  let port: number | undefined;
  if (hostPart.startsWith('[')) {
    const close = hostPart.indexOf(']');
    if (close < 0) throw new ArgumentError(`"${text}": unterminated [IPv6] host`);
    const after = hostPart.slice(close + 1);
    if (after.startsWith(':')) port = resolvePort(after.slice(1), 'tcp');
    else if (after !== '') throw new ArgumentError(`"${text}": junk after [host]`);
    hostPart = hostPart.slice(1, close);
  } else {
    const colon = hostPart.lastIndexOf(':');
    if (colon >= 0 && hostPart.indexOf(':') === colon) {
      port = resolvePort(hostPart.slice(colon + 1), 'tcp');
      hostPart = hostPart.slice(0, colon);
    }
  }
  return { query, host: hostPart, port: port ?? resolvePort(defaultPort, 'tcp') };
}

export interface FingerQueryOptions {
  host: string;
  port?: number | string | undefined;
  /** The query line without CRLF, e.g. "alice", "", "/W alice", "bob@elsewhere". */
  query: string;
  /** Prefix /W (the client's -l). */
  verbose?: boolean | undefined;
  /** Whole exchange deadline (default 10 s). */
  timeoutMs?: number | undefined;
  /** Stop reading after this many bytes (default 1 MiB). */
  maxBytes?: number | undefined;
}

/** Send one query and return the raw answer bytes. */
export async function fingerQuery(options: FingerQueryOptions): Promise<Uint8Array> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxBytes = options.maxBytes ?? 1024 * 1024;
  if (/[\r\n]/.test(options.query)) throw new ArgumentError('a finger query is one line');
  const port = resolvePort(options.port ?? 'finger', 'tcp');
  const host = options.host.includes(':') && !options.host.startsWith('[') ? `[${options.host}]` : options.host;
  const ch = await connect(`tcp://${host}:${port}`, { timeoutMs });
  const timer = setTimeout(() => ch.destroy(new TimeoutError(`finger ${options.host}:${port}: no complete answer within ${timeoutMs} ms`)), timeoutMs);
  try {
    const line = `${options.verbose ? '/W ' : ''}${options.query}\r\n`;
    await ch.write(new TextEncoder().encode(line));
    await ch.end();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const chunk = await ch.read();
      if (chunk === null) break;
      if (size + chunk.length > maxBytes) {
        chunks.push(chunk.subarray(0, maxBytes - size));
        size = maxBytes;
        break;
      }
      chunks.push(chunk);
      size += chunk.length;
    }
    return Buffer.concat(chunks, size);
  } finally {
    clearTimeout(timer);
    ch.destroy();
  }
}

/** Make an answer terminal-safe, as the Debian client prints it (see the module comment). */
export function renderFingerOutput(bytes: Uint8Array): Buffer {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] as number;
    if (c === 0x0d) {
      out.push(0x0a);
      if (bytes[i + 1] === 0x0a) i++;
    } else if (c === 0x09 || c === 0x0a) out.push(c);
    else if (c < 0x20) out.push(0x5e, c + 0x40);
    else if (c === 0x7f) out.push(0x5e, 0x3f);
    else if (c >= 0x80 && c < 0xa0) out.push(0x4d, 0x2d, 0x5e, (c & 0x7f) + 0x40);
    else out.push(c);
  }
  return Buffer.from(out);
}

/** Query and render in one step: what `switchboard finger` prints. */
export async function finger(target: string | FingerTarget, options: { verbose?: boolean; timeoutMs?: number; maxBytes?: number } = {}): Promise<string> {
  const t = typeof target === 'string' ? parseFingerTarget(target) : target;
  const raw = await fingerQuery({ host: t.host, port: t.port, query: t.query, verbose: options.verbose, timeoutMs: options.timeoutMs, maxBytes: options.maxBytes });
  return renderFingerOutput(raw).toString('utf8');
}
