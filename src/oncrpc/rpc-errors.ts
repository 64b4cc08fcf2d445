/**
 * Typed errors for every way an ONC RPC call can fail on the far side
 * (RFC 5531 section 9): the accept statuses PROG_UNAVAIL, PROG_MISMATCH,
 * PROC_UNAVAIL, GARBAGE_ARGS, SYSTEM_ERR and the reject statuses RPC_MISMATCH
 * and AUTH_ERROR. `rpcErrorFromReply` is the one place that maps a reply to
 * an error. A server procedure may throw any of these to send that reply.
 */
import { SwitchboardError } from '../errors.js';
import { AcceptStat, AuthStat, RejectStat, type ReplyHeader } from './rpc-message.js';

export type RpcStatus =
  | 'PROG_UNAVAIL'
  | 'PROG_MISMATCH'
  | 'PROC_UNAVAIL'
  | 'GARBAGE_ARGS'
  | 'SYSTEM_ERR'
  | 'RPC_MISMATCH'
  | 'AUTH_ERROR';

/** A call the server answered with an error status. code ERPC. */
export class RpcError extends SwitchboardError {
  override name = 'RpcError';
  readonly status: RpcStatus;
  constructor(status: RpcStatus, message: string, options?: { cause?: unknown }) {
    super('ERPC', `${status}: ${message}`, options);
    this.status = status;
  }
}

export class ProgUnavailError extends RpcError {
  override name = 'ProgUnavailError';
  constructor(readonly prog: number) {
    super('PROG_UNAVAIL', `program ${prog} is not served here`);
  }
}

export class ProgMismatchError extends RpcError {
  override name = 'ProgMismatchError';
  constructor(readonly prog: number, readonly vers: number, readonly low: number, readonly high: number) {
    super('PROG_MISMATCH', `program ${prog} version ${vers} is not served here (versions ${low}..${high} are)`);
  }
}

export class ProcUnavailError extends RpcError {
  override name = 'ProcUnavailError';
  constructor(readonly prog: number, readonly vers: number, readonly proc: number) {
    super('PROC_UNAVAIL', `program ${prog} version ${vers} has no procedure ${proc}`);
  }
}

export class GarbageArgsError extends RpcError {
  override name = 'GarbageArgsError';
  constructor(message = 'the server could not decode the arguments', options?: { cause?: unknown }) {
    super('GARBAGE_ARGS', message, options);
  }
}

export class SystemErrError extends RpcError {
  override name = 'SystemErrError';
  constructor(message = 'the server failed to run the procedure', options?: { cause?: unknown }) {
    super('SYSTEM_ERR', message, options);
  }
}

export class RpcMismatchError extends RpcError {
  override name = 'RpcMismatchError';
  constructor(readonly low: number, readonly high: number) {
    super('RPC_MISMATCH', `the server speaks RPC versions ${low}..${high}, not 2`);
  }
}

const authReasons: Record<number, string> = {
  [AuthStat.AUTH_OK]: 'AUTH_OK',
  [AuthStat.AUTH_BADCRED]: 'AUTH_BADCRED (bad credential, seal broken)',
  [AuthStat.AUTH_REJECTEDCRED]: 'AUTH_REJECTEDCRED (client must begin a new session)',
  [AuthStat.AUTH_BADVERF]: 'AUTH_BADVERF (bad verifier, seal broken)',
  [AuthStat.AUTH_REJECTEDVERF]: 'AUTH_REJECTEDVERF (verifier expired or replayed)',
  [AuthStat.AUTH_TOOWEAK]: 'AUTH_TOOWEAK (rejected for security reasons)',
  [AuthStat.AUTH_INVALIDRESP]: 'AUTH_INVALIDRESP (bogus response verifier)',
  [AuthStat.AUTH_FAILED]: 'AUTH_FAILED (reason unknown)',
  [AuthStat.AUTH_KERB_GENERIC]: 'AUTH_KERB_GENERIC',
  [AuthStat.AUTH_TIMEEXPIRE]: 'AUTH_TIMEEXPIRE',
  [AuthStat.AUTH_TKT_FILE]: 'AUTH_TKT_FILE',
  [AuthStat.AUTH_DECODE]: 'AUTH_DECODE',
  [AuthStat.AUTH_NET_ADDR]: 'AUTH_NET_ADDR',
  [AuthStat.RPCSEC_GSS_CREDPROBLEM]: 'RPCSEC_GSS_CREDPROBLEM',
  [AuthStat.RPCSEC_GSS_CTXPROBLEM]: 'RPCSEC_GSS_CTXPROBLEM',
};

export class AuthError extends RpcError {
  override name = 'AuthError';
  /** The auth_stat value. */
  readonly stat: number;
  readonly reason: string;
  constructor(stat: number) {
    const reason = authReasons[stat] ?? `auth_stat ${stat}`;
    super('AUTH_ERROR', `authentication failed: ${reason}`);
    this.stat = stat;
    this.reason = reason;
  }
}

/** The error for a reply that is not a success, or undefined for SUCCESS. */
export function rpcErrorFromReply(reply: ReplyHeader, call: { prog: number; vers: number; proc: number }): RpcError | undefined {
  if (reply.replyStat === 'accepted') {
    switch (reply.acceptStat) {
      case AcceptStat.SUCCESS:
        return undefined;
      case AcceptStat.PROG_UNAVAIL:
        return new ProgUnavailError(call.prog);
      case AcceptStat.PROG_MISMATCH:
        return new ProgMismatchError(call.prog, call.vers, reply.low ?? 0, reply.high ?? 0);
      case AcceptStat.PROC_UNAVAIL:
        return new ProcUnavailError(call.prog, call.vers, call.proc);
      case AcceptStat.GARBAGE_ARGS:
        return new GarbageArgsError();
      case AcceptStat.SYSTEM_ERR:
        return new SystemErrError();
      default:
        return new SystemErrError(`unknown accept status ${reply.acceptStat}`);
    }
  }
  if (reply.rejectStat === RejectStat.RPC_MISMATCH) return new RpcMismatchError(reply.low ?? 0, reply.high ?? 0);
  return new AuthError(reply.authStat ?? AuthStat.AUTH_FAILED);
}
