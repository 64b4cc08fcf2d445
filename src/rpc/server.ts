/**
 * expose(impl, { on }): the server side. `on` is a Channel (one client), a
 * Listener or an address to listen on (every accepted connection), a worker
 * port, a shared-memory ring pair (`shm:name`, one connection), or a
 * name: then it listens (tcp://127.0.0.1:0 unless `listen` says
 * otherwise) and registers the name with the name service.
 */
import { ArgumentError } from '../errors.js';
import { formatAddress, type Address, type AddressLike } from '../transport/address.js';
import type { Channel } from '../transport/channel.js';
import { listen, type ListenOptions, type Listener } from '../transport/index.js';
import { DEFAULT_MAX_MESSAGE } from './codec-encoder.js';
import { RpcConnection, type ServeOptions } from './connection.js';
import { ChannelLink, isPortLike, PortLink, type PortLike } from './links.js';
import { isAddressValue, isChannel, isListener, looksLikeAddress, RPC_PROTOCOL } from './targets.js';

export interface ExposeOptions extends ServeOptions {
  on: Channel | Listener | PortLike | Address | string;
  /** For a name: where to listen (default tcp://127.0.0.1:0). */
  listen?: AddressLike;
  /** Options for a listener expose() creates. */
  listenOptions?: ListenOptions;
  /** Name-service address(es) for registering a name. */
  nameServer?: string;
}

export interface RpcServer {
  /** Where it listens (with the real port), when it listens. */
  readonly address: string | undefined;
  /** The name it registered, if any. */
  readonly name: string | undefined;
  /** Open connections. */
  readonly connections: ReadonlySet<RpcConnection>;
  /** Stop listening (and unregister the name), close every connection. */
  close(): Promise<void>;
}

class Server implements RpcServer {
  readonly connections = new Set<RpcConnection>();
  address: string | undefined;
  name: string | undefined;
  listener: Listener | undefined;
  nameClient: { close(): Promise<void> } | undefined;
  shmListener: { close(): Promise<void> } | undefined;
  closing = false;

  constructor(
    private readonly impl: object,
    private readonly options: ExposeOptions,
  ) {}

  serveChannel(ch: Channel): RpcConnection {
    return this.serveLink(new ChannelLink(ch, this.options.maxMessageSize ?? DEFAULT_MAX_MESSAGE));
  }

  serveLink(link: ChannelLink | PortLink): RpcConnection {
    const conn = new RpcConnection(link, 'server', { ...this.options, root: this.impl });
    this.connections.add(conn);
    void conn.closed.then(() => this.connections.delete(conn));
    conn.serve();
    return conn;
  }

  async acceptLoop(listener: Listener): Promise<void> {
    for (;;) {
      let ch: Channel;
      try {
        ch = await listener.accept();
      } catch {
        return; // closed
      }
      if (this.closing) {
        ch.destroy();
        return;
      }
      this.serveChannel(ch);
    }
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.nameClient?.close().catch(() => undefined);
    const listenerClosed = this.listener?.close({ graceMs: 0 }).catch(() => undefined);
    await this.shmListener?.close().catch(() => undefined);
    await Promise.all([...this.connections].map((c) => c.close()));
    await listenerClosed;
  }
}

/** Serve `impl`'s methods to RPC clients. */
export async function expose<T extends object>(impl: T, options: ExposeOptions): Promise<RpcServer> {
  if (typeof impl !== 'object' && typeof impl !== 'function') throw new ArgumentError('expose(): impl must be an object');
  const server = new Server(impl, options);
  const on = options.on;
  if (isPortLike(on)) {
    server.serveLink(new PortLink(on, options.maxMessageSize ?? DEFAULT_MAX_MESSAGE));
  } else if (isChannel(on)) {
    server.serveChannel(on);
  } else if (isListener(on)) {
    server.listener = on;
    server.address = formatAddress(on.address);
    void server.acceptLoop(on);
  } else if ((typeof on === 'string' && on.startsWith('shm:')) || (isAddressValue(on) && on.transport === 'shm')) {
    // A shared-memory ring pair carries one connection: serve it when the peer attaches.
    const { listenShm } = await import('../shm/index.js');
    const l = await listenShm(on, options.maxMessageSize === undefined ? {} : { maxMessageSize: options.maxMessageSize + 64 });
    server.address = formatAddress(l.address);
    server.shmListener = l;
    void l.accept().then(
      (ch) => {
        if (server.closing) ch.destroy();
        else server.serveChannel(ch);
      },
      () => undefined,
    );
  } else if ((typeof on === 'string' && looksLikeAddress(on)) || isAddressValue(on)) {
    const l = await listen(on, options.listenOptions);
    server.listener = l;
    server.address = formatAddress(l.address);
    void server.acceptLoop(l);
  } else if (typeof on === 'string') {
    const l = await listen(options.listen ?? 'tcp://127.0.0.1:0', options.listenOptions);
    server.listener = l;
    server.address = formatAddress(l.address);
    void server.acceptLoop(l);
    try {
      const { NameClient } = await import('../naming/index.js');
      const nc = await NameClient.connect(options.nameServer === undefined ? {} : { address: options.nameServer });
      server.nameClient = nc;
      await nc.register(on, { address: server.address, protocol: RPC_PROTOCOL });
      server.name = on;
    } catch (err) {
      await server.close();
      throw err;
    }
  } else {
    throw new ArgumentError('expose(): `on` must be a Channel, a Listener, a worker port, an address or a name');
  }
  return server;
}
