/**
 * switchboard/mp: message passing for parallel programs (seed 12.2.2).
 * Communicators of N ranks with send/receive (a "don't care" sender, receive
 * buffers that truncate, any size without one), non-blocking requests,
 * probes, and MPI's collectives with MPI's algorithms. Ranks are worker
 * threads (MessagePorts), processes on one host (Unix sockets) or on several
 * (TCP); `switchboard run` launches them and they meet through the name
 * service. The transport under a communicator is a small Link interface.
 */
export {
  ANY,
  MAX_TAG,
  Communicator,
  type CommunicatorOptions,
  type DataKind,
  type OpOptions,
  type ProbeStatus,
  type ReceiveOptions,
  type SendOptions,
  type Status,
} from './communicator.js';
export { Request } from './request.js';
export { CollectiveMismatchError, MessageTooLargeError, PeerLostError, RankFailedError } from './errors.js';
export { BUILTIN_OPS, applyOp, type BuiltinOp, type Op, type UserOp } from './ops.js';
export type { TypedArray } from './payload.js';
export type { Envelope, Link, LinkHandlers } from './link.js';
export { init } from './init.js';
export { getWorld } from './world.js';
export { runThreads, type RunThreadsOptions } from './threads.js';
export { joinJob, joinJobFromEnv, hostAddress, ENV, type JoinOptions } from './join.js';
export { FileDirectory, NameServiceDirectory, rankName, type Directory } from './directory.js';
export { StreamLink, type PeerStream, type StreamLinkOptions } from './stream-link.js';
export { PortLink, createPortMesh } from './port-link.js';
