/**
 * switchboard/naming: how processes that do not know each other meet (seed
 * 12.1). A name server maps strings to contact information; a process
 * registers a name and becomes its owner, others look it up or wait for it.
 * Also the services(5) database: names agreed in advance.
 */
export type { ContactInfo, NameOwner, NameRecord, WatchEvent, WatchEventType } from './types.js';
export { NameLimitError, NameNotFoundError, NameTakenError, NotOwnerError } from './name-errors.js';
export {
  DEFAULT_MAX_REPLY_FRAME,
  DEFAULT_MAX_REQUEST_FRAME,
  FRAME_HEADER_SIZE,
  FrameDecoder,
  FrameType,
  PROTOCOL_VERSION,
  SUPPORTED_VERSIONS,
  decodeFrameBody,
  encodeFrame,
  encodeLookupFrame,
  encodeRecordFrame,
  frameWithId,
  type Frame,
} from './protocol.js';
export { decodeRecordBody, encodeRecordBody } from './record-codec.js';
export { DEFAULT_LIMITS, checkContact, checkName, parseRequest, type NameLimits, type Request } from './protocol-messages.js';
export type { LeaseId, NameStore, RegisterInput, RegisterMode, RegisterResult, StoredRecord } from './stores/store.js';
export { EmbeddedStore, type EmbeddedStoreOptions } from './stores/embedded-store.js';
export { EtcdStore, parseEtcdEndpoints, type EtcdStoreOptions } from './stores/etcd-store.js';
export {
  ServiceDatabase,
  getServiceByName,
  getServiceByPort,
  parseServices,
  resolvePort,
  systemServices,
  type ServiceEntry,
} from './services.js';
export { NameClient, NameWatch, type NameClientOptions, type RegisterOptions } from './client.js';
export { startNameServer, type ClientInfo, type NameServer, type NameServerOptions, type NameServerStats } from './server.js';
export { serve, connectByName, type ServeOptions, type Service, type ConnectByNameOptions } from './meet.js';
export {
  NAMESERVER_ENV,
  NAMESERVER_SERVICE,
  clientAddresses,
  defaultDataDir,
  defaultSocketPath,
  defaultTcpAddress,
  runtimeDir,
} from './well-known.js';
