/**
 * fingerd's answers, laid out as netkit's finger prints them locally (the
 * Debian fingerd runs that program), so `finger user@host` looks the same
 * whoever serves it. Pure functions: users in, text out (LF line ends; the
 * server turns them into CRLF on the wire).
 */
import type { FingerSession, FingerUser } from './users.js';

export interface FormatOptions {
  /** Current time in seconds since the epoch. */
  now: number;
  /** IANA time zone for dates (default: the process's). */
  timeZone?: string | undefined;
}

interface Clock {
  weekday: string;
  month: string;
  day: string;
  hour: string;
  minute: string;
  year: string;
  zone: string;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function clock(seconds: number, timeZone: string | undefined): Clock {
  const key = timeZone ?? '';
  let f = formatters.get(key);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      weekday: 'short',
      month: 'short',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      year: 'numeric',
      hourCycle: 'h23',
      timeZoneName: 'short',
      ...(timeZone === undefined ? {} : { timeZone }),
    });
    formatters.set(key, f);
  }
  const parts: Record<string, string> = {};
  for (const p of f.formatToParts(new Date(seconds * 1000))) parts[p.type] = p.value;
  return {
    weekday: parts.weekday ?? '',
    month: parts.month ?? '',
    day: parts.day ?? '',
    hour: parts.hour ?? '',
    minute: parts.minute ?? '',
    year: parts.year ?? '',
    zone: parts.timeZoneName ?? '',
  };
}

/** "Tue Nov 24 05:13" (asctime's first 16 characters). */
function dayTime(c: Clock): string {
  return `${c.weekday} ${c.month} ${c.day.padStart(2, ' ')} ${c.hour}:${c.minute}`;
}

const HALF_YEAR = (365 * 86400) / 2;

const plural = (n: number, unit: string): string => `${n} ${unit}${n === 1 ? '' : 's'}`;

/** "1 hour 15 minutes", "1 day 2 hours", "5 minutes 3 seconds". */
export function longIdle(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const two = (a: number, ua: string, b: number, ub: string): string => (b > 0 ? `${plural(a, ua)} ${plural(b, ub)}` : plural(a, ua));
  if (d > 0) return two(d, 'day', h, 'hour');
  if (h > 0) return two(h, 'hour', m, 'minute');
  if (m > 0) return two(m, 'minute', s, 'second');
  return plural(s, 'second');
}

/** The short format's idle column: "", "  5", "1:15", "1d". */
export function shortIdle(seconds: number | undefined): string {
  if (seconds === undefined || seconds < 60) return '';
  const d = Math.floor(seconds / 86400);
  if (d > 0) return `${d}d`;
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}` : String(m);
}

/** BSD finger's phone formatting: 5551234 -> 555-1234, 6175551234 -> (617) 555-1234. */
export function formatPhone(phone: string): string {
  if (!/^\d+$/.test(phone)) return phone;
  switch (phone.length) {
    case 11:
      return `+${phone[0]}-${phone.slice(1, 4)}-${phone.slice(4, 7)}-${phone.slice(7)}`;
    case 10:
      return `(${phone.slice(0, 3)}) ${phone.slice(3, 6)}-${phone.slice(6)}`;
    case 7:
      return `${phone.slice(0, 3)}-${phone.slice(3)}`;
    case 5:
      return `x${phone[0]}-${phone.slice(1)}`;
    case 4:
      return `x${phone}`;
    default:
      return phone;
  }
}

/**
 * Make text from a user's files safe for any terminal: control characters
 * become caret notation (^G, ^[, DEL as ^?), C1 controls M-^X, as the BSD
 * finger does; tab and newline stay; CR becomes ^M.
 */
export function escapeControls(text: string): string {
  let out = '';
  for (const ch of text) {
    const c = ch.codePointAt(0) as number;
    if (c === 0x09 || c === 0x0a) out += ch;
    else if (c < 0x20) out += `^${String.fromCharCode(c + 0x40)}`;
    else if (c === 0x7f) out += '^?';
    else if (c >= 0x80 && c < 0xa0) out += `M-^${String.fromCharCode((c & 0x7f) + 0x40)}`;
    else if (c === 0x2028 || c === 0x2029 || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069)) out += `U+${c.toString(16).toUpperCase()}`;
    else out += ch;
  }
  return out;
}

function sessionLines(s: FingerSession, o: FormatOptions): string[] {
  const c = clock(s.loginTime, o.timeZone);
  let line = `On since ${dayTime(c)} (${c.zone}) on ${s.line}`;
  if (s.host !== '') line += ` from ${s.host}`;
  const lines: string[] = [];
  const idle = s.idleSeconds !== undefined && s.idleSeconds >= 60;
  if (idle) {
    if (s.host !== '') {
      lines.push(line);
      line = `   ${longIdle(s.idleSeconds as number)} idle`;
    } else {
      line += `   ${longIdle(s.idleSeconds as number)} idle`;
    }
  }
  if (!s.writable) {
    if (idle) {
      lines.push(line);
      line = '     (messages off)';
    } else {
      line += ' (messages off)';
    }
  }
  lines.push(line);
  return lines;
}

function dateWithYear(seconds: number, o: FormatOptions): string {
  const c = clock(seconds, o.timeZone);
  return `${dayTime(c)} ${c.year} (${c.zone})`;
}

/** The long (/W, or named user) form of one user. */
export function formatLong(u: FingerUser, o: FormatOptions): string {
  const e = escapeControls;
  const lines: string[] = [];
  lines.push(`Login: ${e(u.login).padEnd(15)}\t\t\tName: ${e(u.name)}`);
  lines.push(`Directory: ${e(u.directory).padEnd(25)}\tShell: ${e(u.shell)}`);
  let office = '';
  if (u.office !== '' && u.officePhone !== '') office = `Office: ${e(u.office)}, ${e(formatPhone(u.officePhone))}`;
  else if (u.office !== '') office = `Office: ${e(u.office)}`;
  else if (u.officePhone !== '') office = `Office Phone: ${e(formatPhone(u.officePhone))}`;
  if (u.homePhone !== '') office += `${office === '' ? '' : '\t\t'}Home Phone: ${e(formatPhone(u.homePhone))}`;
  if (office !== '') lines.push(office);
  if (u.sessions.length > 0) {
    for (const s of u.sessions) lines.push(...sessionLines({ ...s, line: e(s.line), host: e(s.host) }, o));
  } else if (u.lastLogin === undefined || u.lastLogin.time === 0) {
    lines.push('Never logged in.');
  } else {
    const l = u.lastLogin;
    const c = clock(l.time, o.timeZone);
    let line =
      o.now - l.time > HALF_YEAR
        ? `Last login ${dayTime(c)} ${c.year} (${c.zone}) on ${e(l.line)}`
        : `Last login ${dayTime(c)} (${c.zone}) on ${e(l.line)}`;
    if (l.host !== '') line += ` from ${e(l.host)}`;
    lines.push(line);
  }
  const mail = u.mail ?? { kind: 'none' };
  if (mail.kind === 'none') lines.push('No mail.');
  else if (mail.kind === 'new') {
    lines.push(`New mail received ${dateWithYear(mail.received, o)}`);
    lines.push(`     Unread since ${dateWithYear(mail.unreadSince, o)}`);
  } else lines.push(`Mail last read ${dateWithYear(mail.lastRead, o)}`);
  let text = lines.join('\n') + '\n';
  for (const f of u.files) {
    const body = escapeControls(f.text);
    text += `${f.label}\n${body}${body.endsWith('\n') || body === '' ? '' : '\n'}`;
  }
  if (!u.hasPlan) text += 'No Plan.\n';
  return text;
}

/** The short (one line per session) form: the answer to {C}. */
export function formatShort(users: readonly FingerUser[], o: FormatOptions): string {
  const e = escapeControls;
  const rows = users.flatMap((u) => u.sessions.map((s) => ({ u, s })));
  if (rows.length === 0) return 'No one logged on.\n';
  const loginW = Math.max(8, ...rows.map((r) => e(r.u.login).length)) + 1;
  const nameW = Math.min(20, Math.max(4, ...rows.map((r) => e(r.u.name).length))) + 1;
  const lines = [`${'Login'.padEnd(loginW)}${'Name'.padEnd(nameW)}  Tty      Idle  Login Time   Office     Office Phone`];
  for (const { u, s } of rows) {
    const c = clock(s.loginTime, o.timeZone);
    const when = o.now - s.loginTime > HALF_YEAR ? `${c.month} ${c.day.padStart(2, ' ')}  ${c.year}` : `${c.month} ${c.day.padStart(2, ' ')} ${c.hour}:${c.minute}`;
    const where = s.host !== '' ? `(${e(s.host)})` : `${e(u.office).slice(0, 10).padEnd(10)} ${e(formatPhone(u.officePhone))}`;
    const tty = `${s.writable ? ' ' : '*'}${e(s.line).padEnd(8)}`;
    lines.push(`${e(u.login).padEnd(loginW)}${e(u.name).slice(0, nameW - 1).padEnd(nameW)} ${tty}${shortIdle(s.idleSeconds).padStart(5)}  ${when} ${where}`.trimEnd());
  }
  return lines.join('\n') + '\n';
}

/** Several users in the long form, separated by blank lines (as `finger a b` prints them). */
export function formatLongList(users: readonly FingerUser[], o: FormatOptions): string {
  return users.map((u) => formatLong(u, o)).join('\n');
}
