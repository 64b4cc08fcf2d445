/**
 * Where fingerd's answers come from: the system (passwd, utmp, lastlog or
 * wtmp, the mail spool, the terminals' access times, shared home files) or,
 * for demos and tests, a directory of fake users. Both give FingerUser
 * records; matching by login and by real name works the same for both.
 */
import { open, readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseGecos, readPasswd, type PasswdEntry } from '../passwd.js';
import { readSharedHomeFile, type HomeFileLimits } from './home-files.js';
import {
  LASTLOG_RECORD_SIZE,
  decodeLastlogRecord,
  decodeUtmp,
  lastLoginFromWtmp,
  userSessions,
  UTMP_RECORD_SIZE,
} from './utmp.js';

export interface FingerSession {
  /** Terminal without /dev/, e.g. "pts/3". */
  line: string;
  /** Remote host of the login, "" for a local one. */
  host: string;
  /** Login time, seconds since the epoch. */
  loginTime: number;
  /** Seconds since the terminal was last used; undefined when unknown. */
  idleSeconds: number | undefined;
  /** Whether others may write to the terminal (mesg y). */
  writable: boolean;
}

export type MailStatus =
  | { kind: 'none' }
  | { kind: 'new'; received: number; unreadSince: number }
  | { kind: 'read'; lastRead: number };

export interface FingerUser {
  login: string;
  uid: number;
  name: string;
  office: string;
  officePhone: string;
  homePhone: string;
  directory: string;
  shell: string;
  sessions: FingerSession[];
  /** From lastlog or wtmp; time 0 or undefined means never (shown only when not logged in). */
  lastLogin: { time: number; line: string; host: string } | undefined;
  mail: MailStatus | undefined;
  /** Shared files in display order: [label, text]. */
  files: { label: string; text: string }[];
  /** True when a ~/.plan was shown (otherwise "No Plan."). */
  hasPlan: boolean;
}

export interface UserSource {
  /** Users with at least one session, each once, sorted by login. */
  loggedIn(): Promise<FingerUser[]>;
  /** Users matching `name` by login or by a word of the real name. */
  find(name: string, options?: { matchNames?: boolean }): Promise<FingerUser[]>;
}

/** The home files fingerd shows, in netkit's order. */
export const HOME_FILES: readonly { file: string; label: string }[] = [
  { file: '.pgpkey', label: 'PGP key:' },
  { file: '.pubkey', label: 'Public key:' },
  { file: '.project', label: 'Project:' },
  { file: '.plan', label: 'Plan:' },
];

/** True when `query` names this user: its login, or (matchNames) its real name or a word of it, case-insensitively. */
export function matchesUser(query: string, login: string, realName: string, matchNames = true): boolean {
  if (query === login) return true;
  if (!matchNames) return false;
  const q = query.toLowerCase().replaceAll('.', ' ').replaceAll('_', ' ');
  const name = realName.toLowerCase();
  if (name === '' || q.trim() === '') return false;
  if (name === q) return true;
  return name.split(/[\s,.]+/).includes(q);
}

async function homeFiles(home: string, owner: number, limits: HomeFileLimits): Promise<{ files: FingerUser['files']; hasPlan: boolean }> {
  const files: FingerUser['files'] = [];
  let hasPlan = false;
  for (const { file, label } of HOME_FILES) {
    const r = await readSharedHomeFile(home, file, owner, limits);
    if (!r.ok) continue;
    files.push({ label, text: r.truncated ? `${r.text}${r.text.endsWith('\n') ? '' : '\n'}[truncated]\n` : r.text });
    if (file === '.plan') hasPlan = true;
  }
  return { files, hasPlan };
}

async function hidden(home: string): Promise<boolean> {
  // netkit's finger hides users with ~/.nofinger from network queries
  try {
    await stat(join(home, '.nofinger'));
    return true;
  } catch {
    return false;
  }
}

export interface SystemSourceOptions {
  passwdFile?: string | undefined;
  utmpPath?: string | undefined;
  wtmpPath?: string | undefined;
  lastlogPath?: string | undefined;
  mailDir?: string | undefined;
  devDir?: string | undefined;
  /** How long the passwd list is reused (default 10 s). */
  cacheMs?: number | undefined;
  /** Most bytes of wtmp scanned (from the end) for a last login (default 4 MiB). */
  maxWtmpBytes?: number | undefined;
  limits?: HomeFileLimits | undefined;
  now?: (() => number) | undefined;
}

/** The real machine's users. */
export class SystemUserSource implements UserSource {
  #o: SystemSourceOptions;
  #cache: { at: number; entries: PasswdEntry[] } | undefined;

  constructor(options: SystemSourceOptions = {}) {
    this.#o = options;
  }

  #now(): number {
    return this.#o.now ? this.#o.now() : Date.now();
  }

  async #passwd(): Promise<PasswdEntry[]> {
    const ttl = this.#o.cacheMs ?? 10_000;
    if (this.#cache && this.#now() - this.#cache.at < ttl) return this.#cache.entries;
    const entries = await readPasswd(this.#o.passwdFile ?? '/etc/passwd');
    this.#cache = { at: this.#now(), entries };
    return entries;
  }

  async #sessions(): Promise<Map<string, FingerSession[]>> {
    const byUser = new Map<string, FingerSession[]>();
    let bytes: Uint8Array;
    try {
      bytes = await readFile(this.#o.utmpPath ?? '/var/run/utmp');
    } catch {
      return byUser; // no utmp (containers): nobody is logged in
    }
    const nowS = this.#now() / 1000;
    for (const r of userSessions(decodeUtmp(bytes))) {
      let idleSeconds: number | undefined;
      let writable = false;
      if (!r.line.includes('..')) {
        try {
          const st = await stat(join(this.#o.devDir ?? '/dev', r.line));
          idleSeconds = Math.max(0, Math.floor(nowS - st.atimeMs / 1000));
          writable = (st.mode & 0o020) !== 0;
        } catch {
          // terminal gone: idle unknown
        }
      }
      const list = byUser.get(r.user) ?? [];
      list.push({ line: r.line, host: r.host, loginTime: r.time, idleSeconds, writable });
      byUser.set(r.user, list);
    }
    return byUser;
  }

  async #lastLogin(entry: PasswdEntry): Promise<FingerUser['lastLogin']> {
    const ll = this.#o.lastlogPath ?? '/var/log/lastlog';
    try {
      const fh = await open(ll, 'r');
      try {
        const buf = Buffer.alloc(LASTLOG_RECORD_SIZE);
        const { bytesRead } = await fh.read(buf, 0, buf.length, entry.uid * LASTLOG_RECORD_SIZE);
        if (bytesRead === LASTLOG_RECORD_SIZE) {
          const rec = decodeLastlogRecord(buf);
          if (rec.time !== 0) return rec;
        }
      } finally {
        await fh.close();
      }
    } catch {
      // no lastlog (newer distributions use lastlog2): try wtmp
    }
    try {
      const fh = await open(this.#o.wtmpPath ?? '/var/log/wtmp', 'r');
      try {
        const size = (await fh.stat()).size;
        const max = this.#o.maxWtmpBytes ?? 4 * 1024 * 1024;
        const len = Math.min(size - (size % UTMP_RECORD_SIZE), max - (max % UTMP_RECORD_SIZE));
        const buf = Buffer.alloc(len);
        const start = size - (size % UTMP_RECORD_SIZE) - len;
        await fh.read(buf, 0, len, start);
        const r = lastLoginFromWtmp(decodeUtmp(buf), entry.login);
        if (r) return { time: r.time, line: r.line, host: r.host };
      } finally {
        await fh.close();
      }
    } catch {
      // no wtmp either
    }
    return undefined;
  }

  async #mail(login: string): Promise<MailStatus | undefined> {
    try {
      const st = await stat(join(this.#o.mailDir ?? '/var/mail', login));
      if (st.size === 0) return { kind: 'none' };
      const m = Math.floor(st.mtimeMs / 1000);
      const a = Math.floor(st.atimeMs / 1000);
      return m > a ? { kind: 'new', received: m, unreadSince: a } : { kind: 'read', lastRead: a };
    } catch {
      return { kind: 'none' };
    }
  }

  async #build(entry: PasswdEntry, sessions: FingerSession[]): Promise<FingerUser> {
    const g = parseGecos(entry.gecos, entry.login);
    const { files, hasPlan } = await homeFiles(entry.home, entry.uid, this.#o.limits ?? {});
    return {
      login: entry.login,
      uid: entry.uid,
      name: g.name,
      office: g.office,
      officePhone: g.officePhone,
      homePhone: g.homePhone,
      directory: entry.home,
      shell: entry.shell,
      sessions,
      lastLogin: sessions.length > 0 ? undefined : await this.#lastLogin(entry),
      mail: await this.#mail(entry.login),
      files,
      hasPlan,
    };
  }

  async loggedIn(): Promise<FingerUser[]> {
    const sessions = await this.#sessions();
    const passwd = await this.#passwd();
    const out: FingerUser[] = [];
    for (const login of [...sessions.keys()].sort()) {
      const entry = passwd.find((e) => e.login === login);
      if (!entry || (await hidden(entry.home))) continue;
      out.push(await this.#build(entry, sessions.get(login) ?? []));
    }
    return out;
  }

  async find(name: string, options: { matchNames?: boolean } = {}): Promise<FingerUser[]> {
    const passwd = await this.#passwd();
    const hits = passwd.filter((e) => matchesUser(name, e.login, parseGecos(e.gecos, e.login).name, options.matchNames ?? true));
    const seen = new Set<string>();
    const sessions = hits.length > 0 ? await this.#sessions() : new Map<string, FingerSession[]>();
    const out: FingerUser[] = [];
    for (const e of hits) {
      if (seen.has(e.login) || (await hidden(e.home))) continue;
      seen.add(e.login);
      out.push(await this.#build(e, sessions.get(e.login) ?? []));
    }
    return out;
  }
}

/**
 * Fake users for demos and tests: every subdirectory DIR/<login> is a user
 * whose home is that directory (its .plan, .project, .pubkey, .pgpkey are
 * served with the same safety rules, the directory's owner counting as the
 * user), described by an optional DIR/<login>/.finger.json:
 *
 *   { "name": "Alice Liddell", "office": "Room 101", "officePhone": "5551234",
 *     "homePhone": "", "shell": "/bin/sh", "directory": "/home/alice",
 *     "sessions": [{ "line": "pts/3", "host": "10.1.2.3", "loginTime": 1764000000,
 *                    "idleSeconds": 4500, "writable": true }],
 *     "lastLogin": { "time": 1764000000, "line": "pts/9", "host": "old.example" },
 *     "mail": { "kind": "read", "lastRead": 1764000000 } }
 */
export class DirectoryUserSource implements UserSource {
  #dir: string;
  #limits: HomeFileLimits;

  constructor(dir: string, limits: HomeFileLimits = {}) {
    this.#dir = dir;
    this.#limits = limits;
  }

  async #all(): Promise<{ login: string; home: string; uid: number; meta: FakeUserMeta }[]> {
    let names: string[];
    try {
      names = (await readdir(this.#dir, { withFileTypes: true })).filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name);
    } catch {
      return [];
    }
    const out = [];
    for (const login of names.sort()) {
      const home = join(this.#dir, login);
      let meta: FakeUserMeta = {};
      try {
        const text = await readFile(join(home, '.finger.json'), 'utf8');
        if (text.length <= 64 * 1024) meta = sanitizeMeta(JSON.parse(text) as unknown);
      } catch {
        // no or bad description: a bare user
      }
      let uid: number;
      try {
        uid = (await stat(home)).uid;
      } catch {
        continue;
      }
      out.push({ login, home, uid, meta });
    }
    return out;
  }

  async #build(u: { login: string; home: string; uid: number; meta: FakeUserMeta }): Promise<FingerUser> {
    const { files, hasPlan } = await homeFiles(u.home, u.uid, this.#limits);
    const m = u.meta;
    return {
      login: u.login,
      uid: m.uid ?? u.uid,
      name: m.name ?? u.login,
      office: m.office ?? '',
      officePhone: m.officePhone ?? '',
      homePhone: m.homePhone ?? '',
      directory: m.directory ?? `/home/${u.login}`,
      shell: m.shell ?? '/bin/sh',
      sessions: m.sessions ?? [],
      lastLogin: m.sessions && m.sessions.length > 0 ? undefined : m.lastLogin,
      mail: m.mail ?? { kind: 'none' },
      files,
      hasPlan,
    };
  }

  async loggedIn(): Promise<FingerUser[]> {
    const all = await this.#all();
    const out = [];
    for (const u of all) if ((u.meta.sessions ?? []).length > 0 && !(await hidden(u.home))) out.push(await this.#build(u));
    return out;
  }

  async find(name: string, options: { matchNames?: boolean } = {}): Promise<FingerUser[]> {
    const all = await this.#all();
    const out = [];
    for (const u of all) {
      if (!matchesUser(name, u.login, u.meta.name ?? u.login, options.matchNames ?? true)) continue;
      if (await hidden(u.home)) continue;
      out.push(await this.#build(u));
    }
    return out;
  }
}

interface FakeUserMeta {
  uid?: number;
  name?: string;
  office?: string;
  officePhone?: string;
  homePhone?: string;
  directory?: string;
  shell?: string;
  sessions?: FingerSession[];
  lastLogin?: { time: number; line: string; host: string };
  mail?: MailStatus;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v.slice(0, 256) : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Keep only well-typed fields of a .finger.json (it is data from a file, not trusted). */
function sanitizeMeta(raw: unknown): FakeUserMeta {
  if (typeof raw !== 'object' || raw === null) return {};
  const r = raw as Record<string, unknown>;
  const m: FakeUserMeta = {};
  const set = <K extends keyof FakeUserMeta>(k: K, v: FakeUserMeta[K] | undefined): void => {
    if (v !== undefined) m[k] = v;
  };
  set('uid', num(r.uid));
  set('name', str(r.name));
  set('office', str(r.office));
  set('officePhone', str(r.officePhone));
  set('homePhone', str(r.homePhone));
  set('directory', str(r.directory));
  set('shell', str(r.shell));
  if (Array.isArray(r.sessions)) {
    m.sessions = r.sessions.slice(0, 32).flatMap((s: unknown) => {
      if (typeof s !== 'object' || s === null) return [];
      const o = s as Record<string, unknown>;
      const line = str(o.line);
      if (line === undefined) return [];
      return [{ line, host: str(o.host) ?? '', loginTime: num(o.loginTime) ?? 0, idleSeconds: num(o.idleSeconds), writable: o.writable !== false }];
    });
  }
  if (typeof r.lastLogin === 'object' && r.lastLogin !== null) {
    const o = r.lastLogin as Record<string, unknown>;
    m.lastLogin = { time: num(o.time) ?? 0, line: str(o.line) ?? '', host: str(o.host) ?? '' };
  }
  if (typeof r.mail === 'object' && r.mail !== null) {
    const o = r.mail as Record<string, unknown>;
    if (o.kind === 'new') m.mail = { kind: 'new', received: num(o.received) ?? 0, unreadSince: num(o.unreadSince) ?? 0 };
    else if (o.kind === 'read') m.mail = { kind: 'read', lastRead: num(o.lastRead) ?? 0 };
    else m.mail = { kind: 'none' };
  }
  return m;
}
