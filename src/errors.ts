/**
 * The one error hierarchy of Switchboard. Every error thrown or rejected by a
 * public API is a SwitchboardError (or a subclass) with a stable string
 * `code` that programs can switch on; messages are for people.
 */

/** Stable error codes. New codes are added, never renamed. */
export type ErrorCode =
  | 'ECLOSED' // operation on a closed channel, listener or client
  | 'ETIMEDOUT' // a deadline passed
  | 'EPIPE' // write where no reader is left
  | 'ECONNRESET' // the peer went away mid-conversation
  | 'ECONNREFUSED' // nobody listens there
  | 'EMSGSIZE' // a message larger than the configured maximum
  | 'EPROTO' // malformed or truncated input on the wire
  | 'EINVAL' // a bad argument to a public function
  | 'ENOENT' // a path, name or service that does not exist
  | 'EEXIST' // something that must be new already exists
  | 'EADDRINUSE' // address already in use
  | 'EACCES' // permission denied
  | 'EABORTED' // cancelled by an AbortSignal
  | 'ENAMETAKEN' // a name-service name held by someone else
  | 'ENOTOWNER' // an operation on a name without its owner token
  | 'EVERSION' // incompatible protocol version
  | 'ELIMIT' // a configured limit was reached
  | 'EOWNERDEAD' // a lock holder died while holding it
  | 'EUNSUPPORTED' // a feature this platform or build cannot offer
  | 'EBUSY' // the resource is held by an operation still in progress
  | 'ERPC' // a remote procedure failed
  | 'EIO'; // any other operating-system error

export interface SwitchboardErrorOptions {
  cause?: unknown;
}

export class SwitchboardError extends Error {
  readonly code: ErrorCode;
  override name = 'SwitchboardError';

  constructor(code: ErrorCode, message: string, options?: SwitchboardErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

/** A bad argument to a public function. */
export class ArgumentError extends SwitchboardError {
  override name = 'ArgumentError';
  constructor(message: string, options?: SwitchboardErrorOptions) {
    super('EINVAL', message, options);
  }
}

/** A deadline passed. */
export class TimeoutError extends SwitchboardError {
  override name = 'TimeoutError';
  constructor(message: string, options?: SwitchboardErrorOptions) {
    super('ETIMEDOUT', message, options);
  }
}

/** Cancelled through an AbortSignal. */
export class AbortError extends SwitchboardError {
  override name = 'AbortError';
  constructor(message = 'the operation was aborted', options?: SwitchboardErrorOptions) {
    super('EABORTED', message, options);
  }
}

/** Malformed, truncated or oversized input on the wire (every decoder throws these). */
export class ProtocolError extends SwitchboardError {
  override name = 'ProtocolError';
  constructor(message: string, options?: SwitchboardErrorOptions & { code?: 'EPROTO' | 'EMSGSIZE' | 'EVERSION' }) {
    super(options?.code ?? 'EPROTO', message, options);
  }
}

const errnoToCode: Record<string, ErrorCode> = {
  EPIPE: 'EPIPE',
  ECONNRESET: 'ECONNRESET',
  ECONNABORTED: 'ECONNRESET',
  ECONNREFUSED: 'ECONNREFUSED',
  ETIMEDOUT: 'ETIMEDOUT',
  ENOENT: 'ENOENT',
  EEXIST: 'EEXIST',
  EADDRINUSE: 'EADDRINUSE',
  EACCES: 'EACCES',
  EPERM: 'EACCES',
  EMSGSIZE: 'EMSGSIZE',
  ERR_STREAM_DESTROYED: 'ECLOSED',
  ERR_SOCKET_CLOSED: 'ECLOSED',
  ERR_STREAM_WRITE_AFTER_END: 'ECLOSED',
  ERR_SOCKET_DGRAM_NOT_RUNNING: 'ECLOSED',
};

/**
 * Turn an error from Node (errno-style `code`) into a SwitchboardError,
 * keeping the original as `cause`. SwitchboardErrors pass through unchanged.
 */
export function fromSystemError(err: unknown, context: string): SwitchboardError {
  if (err instanceof SwitchboardError) return err;
  const sys = err as NodeJS.ErrnoException | undefined;
  const code = (sys?.code !== undefined ? errnoToCode[sys.code] : undefined) ?? 'EIO';
  const detail = sys?.message ?? String(err);
  return new SwitchboardError(code, `${context}: ${detail}`, { cause: err });
}

/** Throw an ArgumentError unless `cond` holds. */
export function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new ArgumentError(message);
}
