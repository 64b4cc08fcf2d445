/**
 * RPC messages (RFC 5531 sections 8-9): call and reply headers, opaque_auth,
 * AUTH_SYS credentials. Pure encode/decode over XdrWriter/XdrReader; the
 * procedure arguments and results follow the header in the same buffer.
 */
import { XdrReader, XdrWriter, XdrError } from '../wire/index.js';

export const RPC_VERSION = 2;

export const MsgType = { CALL: 0, REPLY: 1 } as const;
export const ReplyStat = { MSG_ACCEPTED: 0, MSG_DENIED: 1 } as const;
export const AcceptStat = { SUCCESS: 0, PROG_UNAVAIL: 1, PROG_MISMATCH: 2, PROC_UNAVAIL: 3, GARBAGE_ARGS: 4, SYSTEM_ERR: 5 } as const;
export const RejectStat = { RPC_MISMATCH: 0, AUTH_ERROR: 1 } as const;
export const AuthFlavor = { AUTH_NONE: 0, AUTH_SYS: 1, AUTH_SHORT: 2, AUTH_DH: 3, RPCSEC_GSS: 6 } as const;
export const AuthStat = {
  AUTH_OK: 0,
  AUTH_BADCRED: 1,
  AUTH_REJECTEDCRED: 2,
  AUTH_BADVERF: 3,
  AUTH_REJECTEDVERF: 4,
  AUTH_TOOWEAK: 5,
  AUTH_INVALIDRESP: 6,
  AUTH_FAILED: 7,
  AUTH_KERB_GENERIC: 8,
  AUTH_TIMEEXPIRE: 9,
  AUTH_TKT_FILE: 10,
  AUTH_DECODE: 11,
  AUTH_NET_ADDR: 12,
  RPCSEC_GSS_CREDPROBLEM: 13,
  RPCSEC_GSS_CTXPROBLEM: 14,
} as const;

/** opaque_auth: a flavor and up to 400 bytes of body. */
export interface OpaqueAuth {
  flavor: number;
  body: Uint8Array;
}

export const MAX_AUTH_BYTES = 400;
const EMPTY = new Uint8Array(0);
export const AUTH_NONE: OpaqueAuth = Object.freeze({ flavor: AuthFlavor.AUTH_NONE, body: EMPTY });

/** authsys_parms (RFC 5531 appendix A). */
export interface AuthSysParams {
  stamp: number;
  machinename: string;
  uid: number;
  gid: number;
  gids: number[];
}

export function encodeAuthSys(p: AuthSysParams): OpaqueAuth {
  const w = new XdrWriter(64);
  w.uint(p.stamp >>> 0).string(p.machinename, 255).uint(p.uid).uint(p.gid);
  if (p.gids.length > 16) throw new XdrError(`AUTH_SYS carries at most 16 groups, got ${p.gids.length}`);
  w.uint(p.gids.length);
  for (const g of p.gids) w.uint(g);
  return { flavor: AuthFlavor.AUTH_SYS, body: w.finish() };
}

export function decodeAuthSys(body: Uint8Array): AuthSysParams {
  const r = new XdrReader(body);
  const stamp = r.uint();
  const machinename = r.string(255);
  const uid = r.uint();
  const gid = r.uint();
  const n = r.length(16, 'gids', 4);
  const gids: number[] = [];
  for (let i = 0; i < n; i++) gids.push(r.uint());
  r.done();
  return { stamp, machinename, uid, gid, gids };
}

function writeAuth(w: XdrWriter, a: OpaqueAuth): void {
  w.int(a.flavor).opaque(a.body, MAX_AUTH_BYTES);
}

function readAuth(r: XdrReader): OpaqueAuth {
  const flavor = r.int();
  const n = r.length(MAX_AUTH_BYTES, 'opaque', 1);
  // AUTH_NONE bodies are empty: share one empty array rather than make a view per message.
  return { flavor, body: n === 0 ? EMPTY : r.opaqueFixed(n) };
}

export interface CallHeader {
  xid: number;
  prog: number;
  vers: number;
  proc: number;
  cred: OpaqueAuth;
  verf: OpaqueAuth;
}

/** Write a call header; the arguments go next into the same writer. */
export function writeCallHeader(w: XdrWriter, h: CallHeader): void {
  writeCallFields(w, h.xid, h.prog, h.vers, h.proc, h.cred, h.verf);
}

/** writeCallHeader without a header object, for the client's per-call path. */
export function writeCallFields(w: XdrWriter, xid: number, prog: number, vers: number, proc: number, cred: OpaqueAuth, verf: OpaqueAuth): void {
  w.uint(xid).uint(MsgType.CALL).uint(RPC_VERSION).uint(prog).uint(vers).uint(proc);
  writeAuth(w, cred);
  writeAuth(w, verf);
}

export interface DecodedCall extends CallHeader {
  rpcvers: number;
}

/**
 * Read a call header (the reader is left at the arguments). The xid and
 * message type have already been read by `readMessageStart`.
 */
export function readCallBody(r: XdrReader, xid: number): DecodedCall {
  const rpcvers = r.uint();
  const prog = r.uint();
  const vers = r.uint();
  const proc = r.uint();
  const cred = readAuth(r);
  const verf = readAuth(r);
  return { xid, rpcvers, prog, vers, proc, cred, verf };
}

/** xid and message type, the common start of every message. */
export function readMessageStart(r: XdrReader): { xid: number; mtype: number } {
  const xid = r.uint();
  const mtype = r.uint();
  if (mtype !== MsgType.CALL && mtype !== MsgType.REPLY) throw new XdrError(`message type ${mtype} is neither CALL nor REPLY`);
  return { xid, mtype };
}

export type ReplyHeader =
  | { xid: number; replyStat: 'accepted'; verf: OpaqueAuth; acceptStat: number; low?: number; high?: number }
  | { xid: number; replyStat: 'denied'; rejectStat: number; low?: number; high?: number; authStat?: number };

/** Read a reply body after `readMessageStart`; on SUCCESS the reader is left at the results. */
export function readReplyBody(r: XdrReader, xid: number): ReplyHeader {
  const stat = r.uint();
  if (stat === ReplyStat.MSG_ACCEPTED) {
    const verf = readAuth(r);
    const acceptStat = r.uint();
    if (acceptStat === AcceptStat.PROG_MISMATCH) return { xid, replyStat: 'accepted', verf, acceptStat, low: r.uint(), high: r.uint() };
    return { xid, replyStat: 'accepted', verf, acceptStat };
  }
  if (stat !== ReplyStat.MSG_DENIED) throw new XdrError(`reply status ${stat} is neither MSG_ACCEPTED nor MSG_DENIED`);
  const rejectStat = r.uint();
  if (rejectStat === RejectStat.RPC_MISMATCH) return { xid, replyStat: 'denied', rejectStat, low: r.uint(), high: r.uint() };
  if (rejectStat === RejectStat.AUTH_ERROR) return { xid, replyStat: 'denied', rejectStat, authStat: r.uint() };
  throw new XdrError(`reject status ${rejectStat} is neither RPC_MISMATCH nor AUTH_ERROR`);
}

/** Write an accepted reply header; for SUCCESS the results go next. */
export function writeAcceptedReply(w: XdrWriter, xid: number, acceptStat: number, verf: OpaqueAuth = AUTH_NONE, mismatch?: { low: number; high: number }): void {
  w.uint(xid).uint(MsgType.REPLY).uint(ReplyStat.MSG_ACCEPTED);
  writeAuth(w, verf);
  w.uint(acceptStat);
  if (acceptStat === AcceptStat.PROG_MISMATCH) w.uint(mismatch?.low ?? 0).uint(mismatch?.high ?? 0);
}

export function writeRpcMismatchReply(w: XdrWriter, xid: number, low: number, high: number): void {
  w.uint(xid).uint(MsgType.REPLY).uint(ReplyStat.MSG_DENIED).uint(RejectStat.RPC_MISMATCH).uint(low).uint(high);
}

export function writeAuthErrorReply(w: XdrWriter, xid: number, authStat: number): void {
  w.uint(xid).uint(MsgType.REPLY).uint(ReplyStat.MSG_DENIED).uint(RejectStat.AUTH_ERROR).uint(authStat);
}
