/**
 * Switchboard RPC (seed 12.2.1): a TypeScript interface is the contract.
 * The server exposes an object, the client gets a typed stub (a Proxy) whose
 * methods send their arguments over a channel and return promises.
 */
export { decode, encode, Decoder, Encoder, UnsendableError, DEFAULT_MAX_MESSAGE, type CodecOptions, type DecodeHooks, type EncodeHooks } from './codec.js';
export { proxy, stream, transfer, type ProxyMarked, type StreamMarked } from './markers.js';
