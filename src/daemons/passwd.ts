/**
 * The system user database (passwd(5)): parsed from `getent passwd`, so NSS
 * sources (LDAP, systemd-userdb) count, or from /etc/passwd when getent is
 * missing. Used to resolve `--user nobody` and by fingerd.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { SwitchboardError } from '../errors.js';

export interface PasswdEntry {
  login: string;
  uid: number;
  gid: number;
  /** The whole GECOS field. */
  gecos: string;
  home: string;
  shell: string;
}

/** The GECOS field split as BSD finger reads it: name,office,office phone,home phone. */
export interface Gecos {
  name: string;
  office: string;
  officePhone: string;
  homePhone: string;
}

/** Parse passwd(5) text; malformed lines are skipped, as the C library does. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 7) continue;
    const [login = '', , uidText = '', gidText = '', gecos = '', home = '', ...shellParts] = f;
    if (login === '' || !/^\d+$/.test(uidText) || !/^\d+$/.test(gidText)) continue;
    out.push({ login, uid: Number(uidText), gid: Number(gidText), gecos, home, shell: shellParts.join(':') });
  }
  return out;
}

/** Split GECOS; `&` in the name stands for the capitalised login (BSD convention). */
export function parseGecos(gecos: string, login: string): Gecos {
  const [name = '', office = '', officePhone = '', homePhone = ''] = gecos.split(',');
  const cap = login.charAt(0).toUpperCase() + login.slice(1);
  return { name: name.replaceAll('&', cap), office, officePhone, homePhone };
}

function getent(args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('getent', args, { timeout: 5000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => {
      // exit status 2 means "no such key": an answer, not a failure
      if (err && (err as { code?: unknown }).code === 2) resolve('');
      else resolve(err ? undefined : stdout);
    });
  });
}

/** Every account: `getent passwd`, falling back to the file. */
export async function readPasswd(file = '/etc/passwd'): Promise<PasswdEntry[]> {
  if (file === '/etc/passwd') {
    const text = await getent(['passwd']);
    if (text !== undefined) return parsePasswd(text);
  }
  try {
    return parsePasswd(await readFile(file, 'utf8'));
  } catch (err) {
    throw new SwitchboardError('ENOENT', `cannot read the user database ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** One account by login or numeric uid (getpwnam/getpwuid), synchronously from /etc/passwd or getent. */
export function lookupUserSync(nameOrUid: string | number, file = '/etc/passwd'): PasswdEntry | undefined {
  const key = String(nameOrUid);
  const numeric = /^\d+$/.test(key);
  const match = (e: PasswdEntry): boolean => (numeric ? e.uid === Number(key) : e.login === key);
  try {
    const hit = parsePasswd(readFileSync(file, 'utf8')).find(match);
    if (hit) return hit;
  } catch {
    // fall through to getent
  }
  if (file !== '/etc/passwd') return undefined;
  try {
    // synchronous: used at startup (privilege drop), never per request
    const out = execFileSyncText('getent', ['passwd', key]);
    return parsePasswd(out).find(match);
  } catch {
    return undefined;
  }
}

function execFileSyncText(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
}

/** A group id by name or number (getgrnam), from /etc/group or getent. */
export function lookupGroupSync(nameOrGid: string | number, file = '/etc/group'): number | undefined {
  const key = String(nameOrGid);
  if (/^\d+$/.test(key)) return Number(key);
  const find = (text: string): number | undefined => {
    for (const line of text.split('\n')) {
      const f = line.split(':');
      if (f[0] === key && f[2] !== undefined && /^\d+$/.test(f[2])) return Number(f[2]);
    }
    return undefined;
  };
  try {
    const hit = find(readFileSync(file, 'utf8'));
    if (hit !== undefined) return hit;
  } catch {
    // fall through
  }
  try {
    return find(execFileSyncText('getent', ['group', key]));
  } catch {
    return undefined;
  }
}
