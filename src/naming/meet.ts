/**
 * Two unrelated processes meet by a string: one serves Channels under a name,
 * the other connects to the name. Built on the transport and the name client.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { SwitchboardError } from '../errors.js';
import { connect, formatAddress, listen, type Channel, type ConnectOptions, type Listener } from '../transport/index.js';
import { NameClient, type NameClientOptions } from './client.js';
import type { ContactInfo, NameRecord } from './types.js';
import { ensurePrivateDir, runtimeDir } from './well-known.js';

export interface ServeOptions {
  /** Where to listen (default: a fresh Unix socket in the runtime directory). */
  listen?: string;
  /** The protocol written into the contact info (default 'switchboard-channel'). */
  protocol?: string;
  metadata?: Record<string, string>;
  /** Use this client instead of connecting one (it is not closed by close()). */
  client?: NameClient;
  clientOptions?: NameClientOptions;
  /** Take the name over from its holder. */
  replace?: string;
}

export interface Service {
  readonly name: string;
  readonly address: string;
  readonly token: string;
  readonly listener: Listener;
  /** Unregister, stop listening, close the client if serve() opened it. */
  close(): Promise<void>;
}

let serial = 0;

/** Listen, register `name` with the listening address, and hand every connection to `handler`. */
export async function serve(name: string, handler: (ch: Channel) => void, opts: ServeOptions = {}): Promise<Service> {
  let listenAt = opts.listen;
  let socketPath: string | undefined;
  if (listenAt === undefined) {
    const dir = runtimeDir();
    ensurePrivateDir(dir);
    socketPath = join(dir, `svc-${process.pid}-${++serial}.sock`);
    listenAt = `unix://${socketPath}`;
  }
  const client = opts.client ?? (await NameClient.connect(opts.clientOptions));
  let listener: Listener | undefined;
  try {
    listener = await listen(listenAt, {
      onConnection: (ch) => {
        try {
          handler(ch);
        } catch {
          ch.destroy();
        }
      },
    });
    const address = formatAddress(listener.address);
    const contact: ContactInfo = { address, protocol: opts.protocol ?? 'switchboard-channel' };
    if (opts.metadata !== undefined) contact.metadata = opts.metadata;
    const reg = await client.register(name, contact, opts.replace !== undefined ? { replace: opts.replace } : {});
    const l = listener;
    return {
      name,
      address,
      token: reg.token,
      listener: l,
      async close() {
        await client.unregister(name).catch(() => undefined);
        await l.close({ graceMs: 0 });
        if (socketPath !== undefined) rmSync(socketPath, { force: true });
        if (opts.client === undefined) await client.close();
      },
    };
  } catch (err) {
    await listener?.close({ graceMs: 0 }).catch(() => undefined);
    if (opts.client === undefined) await client.close();
    throw err;
  }
}

export interface ConnectByNameOptions extends ConnectOptions {
  /** Wait up to this long for someone to register the name (default: do not wait). */
  waitMs?: number;
  client?: NameClient;
  clientOptions?: NameClientOptions;
}

/** Look `name` up and connect to its contact address. */
export async function connectByName(name: string, opts: ConnectByNameOptions = {}): Promise<Channel> {
  const client = opts.client ?? (await NameClient.connect(opts.clientOptions));
  let rec: NameRecord;
  try {
    rec = opts.waitMs !== undefined ? await client.waitFor(name, { timeoutMs: opts.waitMs }) : await client.lookup(name);
  } finally {
    if (opts.client === undefined) await client.close();
  }
  const co: ConnectOptions = {};
  if (opts.timeoutMs !== undefined) co.timeoutMs = opts.timeoutMs;
  if (opts.signal !== undefined) co.signal = opts.signal;
  try {
    return await connect(rec.contact.address, co);
  } catch (err) {
    throw new SwitchboardError(
      err instanceof SwitchboardError ? err.code : 'EIO',
      `"${name}" is registered at ${rec.contact.address} by ${rec.owner.client}, but connecting failed: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
