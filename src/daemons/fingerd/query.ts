/**
 * The RFC 1288 query grammar (section 2.3), parsed without I/O:
 *
 *   {Q1} ::= [{W}|{W}{S}{U}]{C}        a local query
 *   {Q2} ::= [{W}{S}][{U}]{H}{C}       a query to forward
 *   {U}  ::= username                   {H} ::= @hostname | @hostname{H}
 *   {W}  ::= /W                         {S} ::= <SP> | <SP>{S}
 *   {C}  ::= <CRLF>
 *
 * Like netkit's fingerd we accept "/w" too and several names separated by
 * spaces; the line terminator has already been removed by the caller.
 */
import { ProtocolError } from '../../errors.js';

export interface FingerQuery {
  /** /W was given: the verbose (long) form. */
  verbose: boolean;
  /** The names asked for; empty for a {C} query (who is logged in). */
  users: string[];
  /**
   * Hosts of a {Q2} query, in the order written: `u@h1@h2` gives [h1, h2].
   * The query goes to the last host, which is asked `u@h1`.
   */
  hosts: string[];
}

export interface QueryLimits {
  /** Most names in one query (default 8). */
  maxUsers?: number;
  /** Longest name, in characters (default 64). */
  maxNameLength?: number;
}

const NAME = /^[^\s@\x00-\x1f\x7f]+$/;
const HOST = /^[A-Za-z0-9._:[\]-]{1,253}$/;

/** Parse one query line (without its CRLF). Throws ProtocolError on a malformed one. */
export function parseQuery(line: string, limits: QueryLimits = {}): FingerQuery {
  const maxUsers = limits.maxUsers ?? 8;
  const maxNameLength = limits.maxNameLength ?? 64;
  let rest = line.trim();
  let verbose = false;
  if (/^\/[Ww](\s|$)/.test(rest)) {
    verbose = true;
    rest = rest.slice(2).trim();
  }
  const tokens = rest === '' ? [] : rest.split(/[ \t]+/);
  const users: string[] = [];
  let hosts: string[] = [];
  for (const token of tokens) {
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(token)) throw new ProtocolError('query contains control characters');
    const at = token.indexOf('@');
    if (at >= 0) {
      if (hosts.length > 0 || tokens.length > 1) throw new ProtocolError('a forwarding query names exactly one user');
      const user = token.slice(0, at);
      hosts = token.slice(at + 1).split('@');
      if (hosts.some((h) => !HOST.test(h))) throw new ProtocolError('bad host name in query');
      if (user !== '') users.push(user);
    } else {
      users.push(token);
    }
  }
  if (users.length > maxUsers) throw new ProtocolError(`too many names in one query (at most ${maxUsers})`);
  for (const u of users) {
    if (u.length > maxNameLength || !NAME.test(u)) throw new ProtocolError('bad user name in query');
  }
  return { verbose, users, hosts };
}

/** The query to send to the next host of a {Q2}: `u@h1@h2` goes to h2 as `u@h1`. */
export function forwardedQuery(q: FingerQuery): { host: string; line: string } | undefined {
  const host = q.hosts[q.hosts.length - 1];
  if (host === undefined) return undefined;
  const remaining = q.hosts.slice(0, -1);
  const user = q.users[0] ?? '';
  const target = remaining.length > 0 ? `${user}@${remaining.join('@')}` : user;
  return { host, line: `${q.verbose ? '/W ' : ''}${target}`.trim() };
}
