/**
 * Switchboard: inter-process communication for Node.js. Each area has its
 * own entry point (switchboard/transport, switchboard/naming, ...); this one
 * re-exports the foundation.
 */
export * from './errors.js';
export * from './transport/index.js';
export * as wire from './wire/index.js';
export { getServiceByName, getServiceByPort, resolvePort, ServiceDatabase, parseServices } from './naming/services.js';
