/**
 * Switchboard RPC (seed 12.2.1): a TypeScript interface is the contract.
 * The server exposes an object, the client gets a typed stub (a Proxy) whose
 * methods send their arguments over a channel and return promises.
 */
export { decode, encode, Decoder, Encoder, UnsendableError, DEFAULT_MAX_MESSAGE, type CodecOptions, type DecodeHooks, type EncodeHooks } from './codec.js';
export { proxy, stream, transfer, type ProxyMarked, type StreamMarked } from './markers.js';
export { expose, type ExposeOptions, type RpcServer } from './server.js';
export { connect, connectionOf, close, openConnection, type RpcConnectOptions } from './client.js';
export { callContext, RpcConnection, type ConnectionOptions, type ConnectionStats, type ServeOptions } from './connection.js';
export { oneWay, withOptions } from './remote.js';
export { PROTOCOL_MAJOR, PROTOCOL_MINOR, STREAM_WINDOW } from './protocol.js';
export type { PortLike } from './links.js';
export type { Target as RpcTarget } from './targets.js';
export type {
  CallContext,
  CallOptions,
  ClientInterceptor,
  OutgoingCall,
  Received,
  Remote,
  RemoteFunction,
  RemoteIterable,
  Sendable,
  ServerInterceptor,
} from './types.js';
