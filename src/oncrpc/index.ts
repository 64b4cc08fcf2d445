/**
 * switchboard/oncrpc: Sun/ONC RPC (seed 12.2.1, remote procedures with
 * arguments marshalled machine-independently), wire-compatible with libtirpc:
 * RFC 5531 messages over TCP, Unix sockets and UDP, an rpcbind/portmapper
 * client (RFC 1833), and a compiler from the RPC language (`.x`) to TypeScript.
 * The XDR codec itself lives in switchboard/wire and is re-exported here.
 */
export { RpcClient, type RpcClientOptions, type CallOptions } from './client.js';
export { RpcServer, NO_REPLY, type RpcServerOptions, type RpcCallContext, type Procedure, type ProcedureTable } from './server.js';
export {
  RpcError,
  ProgUnavailError,
  ProgMismatchError,
  ProcUnavailError,
  GarbageArgsError,
  SystemErrError,
  RpcMismatchError,
  AuthError,
  rpcErrorFromReply,
  type RpcStatus,
} from './rpc-errors.js';
export {
  RPC_VERSION,
  MsgType,
  ReplyStat,
  AcceptStat,
  RejectStat,
  AuthFlavor,
  AuthStat,
  AUTH_NONE,
  encodeAuthSys,
  decodeAuthSys,
  writeCallHeader,
  readMessageStart,
  readCallBody,
  readReplyBody,
  writeAcceptedReply,
  writeAuthErrorReply,
  writeRpcMismatchReply,
  type OpaqueAuth,
  type AuthSysParams,
  type CallHeader,
  type ReplyHeader,
} from './rpc-message.js';
export { DuplicateRequestCache, argsChecksum } from './duplicate-cache.js';
export * from '../wire/xdr-codec.js';
export { XdrReader } from '../wire/xdr-reader.js';
export { XdrWriter } from '../wire/xdr-writer.js';
export { XdrError, XdrBoundError, XdrValueError } from '../wire/xdr-errors.js';
export {
  RpcbindClient,
  rpcbindLookup,
  RPCBIND_PROG,
  RPCBIND_PORT,
  RPCBIND_SOCKET,
  PMAP_VERS,
  IPPROTO_TCP,
  IPPROTO_UDP,
  type PmapMapping,
  type RpcbEntry,
} from './rpcbind-client.js';
export { toUniversalAddress, fromUniversalAddress, netidOf, type Netid } from './universal-address.js';
export {
  compileX,
  compileXFile,
  parseX,
  CompiledX,
  RpcgenError,
  generateTypeScript,
  type CompileOptions,
  type GenerateOptions,
  type DynamicClient,
  type DynamicHandlers,
  type RuntimeProgram,
  type RuntimeVersion,
  type RuntimeProcedure,
} from './rpcgen/index.js';
export type { AddressLike } from '../transport/index.js';
