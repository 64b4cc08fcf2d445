/**
 * switchboard/transport: streams over every OS channel (seed 12.2.3) behind
 * one Channel interface (pipes, socketpairs, FIFOs, TCP, Unix sockets, UDP),
 * the server side (listen/accept), framing adapters, select, and channels
 * inherited by child processes (seed 12.1). Transports move bytes and know
 * no protocol.
 */
export type { Channel, ChannelKind, DatagramEndpoint, PeerInfo } from './channel.js';
export { formatAddress, parseAddress, toAddress, validateAddress, type Address, type AddressLike } from './address.js';
export { connect, type ConnectOptions } from './connect.js';
export { listen, type ListenOptions, type Listener } from './listener.js';
export { ChannelClosedError, isDirectReadable, isDirectWritable, writeSoon, type DirectReadable, type DirectWritable } from './socket-channel.js';
export { fromFd, pipe, socketpair, type FromFdOptions } from './pipes.js';
export { createFifo, openFifo, removeFifo, type FifoOpenOptions } from './fifo.js';
export { MAX_UDP_PAYLOAD, bindUdp, connectUdp, type UdpOptions } from './udp.js';
export { framed, type FramedOptions } from './framed-channel.js';
export { multiplex, select, type MultiplexEvent, type SelectOptions } from './select.js';
export {
  inheritedChannels,
  parentPid,
  spawnWithChannels,
  type ChannelSpec,
  type ChildWithChannels,
  type SpawnWithChannelsOptions,
} from './inheritance.js';
