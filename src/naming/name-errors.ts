/**
 * Typed errors of the name service, and their mapping to and from the wire
 * (one function each way, so the client rejects with the same classes the
 * server threw).
 */
import { SwitchboardError, ProtocolError, ArgumentError, type ErrorCode } from '../errors.js';
import type { NameOwner } from './types.js';

function describeOwner(o: NameOwner): string {
  const bits: string[] = [];
  if (o.pid !== undefined) bits.push(`pid ${o.pid}`);
  if (o.uid !== undefined) bits.push(`uid ${o.uid}`);
  return `"${o.client}"${bits.length ? ` (${bits.join(', ')})` : ''}`;
}

/** The name is held by someone else: says who and since when (seed 12.1, the "sticky situation"). */
export class NameTakenError extends SwitchboardError {
  override name = 'NameTakenError';
  constructor(
    readonly nameTaken: string,
    readonly holder: NameOwner,
    readonly since: number,
  ) {
    super(
      'ENAMETAKEN',
      `name "${nameTaken}" is held by ${describeOwner(holder)} since ${new Date(since).toISOString()}; ` +
        'pick another name, or take it over with the owner token (replace)',
    );
  }
}

/** An operation on a name without its owner token. */
export class NotOwnerError extends SwitchboardError {
  override name = 'NotOwnerError';
  constructor(readonly nameHeld: string, message?: string) {
    super('ENOTOWNER', message ?? `not the owner of "${nameHeld}": the owner token does not match`);
  }
}

/** No such name. */
export class NameNotFoundError extends SwitchboardError {
  override name = 'NameNotFoundError';
  constructor(readonly nameMissing: string) {
    super('ENOENT', `no name "${nameMissing}" is registered`);
  }
}

/** A configured limit was reached (name length, metadata size, names per client, ...). */
export class NameLimitError extends SwitchboardError {
  override name = 'NameLimitError';
  constructor(message: string) {
    super('ELIMIT', message);
  }
}

const CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'ECLOSED', 'ETIMEDOUT', 'EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'EMSGSIZE', 'EPROTO', 'EINVAL', 'ENOENT', 'EEXIST',
  'EADDRINUSE', 'EACCES', 'EABORTED', 'ENAMETAKEN', 'ENOTOWNER', 'EVERSION', 'ELIMIT', 'EOWNERDEAD', 'EUNSUPPORTED', 'ERPC', 'EIO',
]);

/** The body of an error frame. */
export interface WireError {
  code: ErrorCode;
  message: string;
  name?: string;
  holder?: NameOwner;
  since?: number;
}

export function errorToWire(err: unknown): WireError {
  if (err instanceof NameTakenError) {
    return { code: err.code, message: err.message, name: err.nameTaken, holder: err.holder, since: err.since };
  }
  if (err instanceof NotOwnerError) return { code: err.code, message: err.message, name: err.nameHeld };
  if (err instanceof NameNotFoundError) return { code: err.code, message: err.message, name: err.nameMissing };
  if (err instanceof SwitchboardError) return { code: err.code, message: err.message };
  return { code: 'EIO', message: err instanceof Error ? err.message : String(err) };
}

export function errorFromWire(w: WireError): SwitchboardError {
  const code: ErrorCode = CODES.has(w.code) ? w.code : 'EIO';
  switch (code) {
    case 'ENAMETAKEN':
      if (w.name !== undefined && w.holder !== undefined && w.since !== undefined) return new NameTakenError(w.name, w.holder, w.since);
      break;
    case 'ENOTOWNER':
      if (w.name !== undefined) return new NotOwnerError(w.name, w.message);
      break;
    case 'ENOENT':
      if (w.name !== undefined) return new NameNotFoundError(w.name);
      break;
    case 'ELIMIT':
      return new NameLimitError(w.message);
    case 'EINVAL':
      return new ArgumentError(w.message);
    case 'EPROTO':
    case 'EMSGSIZE':
    case 'EVERSION':
      return new ProtocolError(w.message, { code });
    default:
      break;
  }
  return new SwitchboardError(code, w.message);
}
