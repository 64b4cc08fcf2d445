/**
 * Well-known names (seed 12.1, 12.4): the services(5) database. A port number
 * is a name that everybody agrees on in advance; /etc/services writes the
 * agreement down. This module parses it (or any file of the same format) and
 * answers getservbyname/getservbyport questions.
 */
import { readFileSync } from 'node:fs';
import { ArgumentError, SwitchboardError } from '../errors.js';

export type ServiceProtocol = 'tcp' | 'udp' | 'sctp' | 'ddp' | (string & {});

export interface ServiceEntry {
  name: string;
  port: number;
  protocol: ServiceProtocol;
  aliases: string[];
}

/**
 * Names Switchboard itself adopts. They are consulted after the system file,
 * so a local /etc/services entry wins.
 */
export const SWITCHBOARD_SERVICES: readonly ServiceEntry[] = [
  { name: 'switchboard-ns', port: 7117, protocol: 'tcp', aliases: ['sbns'] },
];

export class ServiceParseError extends SwitchboardError {
  override name = 'ServiceParseError';
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super('EPROTO', `${file}:${line}: ${message}`);
  }
}

export interface ParseOptions {
  /** File name used in error messages. */
  file?: string;
  /** Throw on a malformed line instead of skipping it (the C library skips). */
  strict?: boolean;
}

/** Parse the text of a services(5) file. Comments start with '#'. */
export function parseServices(text: string, options: ParseOptions = {}): ServiceEntry[] {
  const file = options.file ?? '<services>';
  const out: ServiceEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    const hash = raw.indexOf('#');
    const body = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (body === '') continue;
    const fields = body.split(/\s+/);
    const name = fields[0] ?? '';
    const portProto = fields[1];
    const m = portProto === undefined ? null : /^(\d{1,5})\/([A-Za-z0-9_-]+)$/.exec(portProto);
    const port = m ? Number(m[1]) : NaN;
    if (!m || port > 65535) {
      if (options.strict) throw new ServiceParseError(file, i + 1, `expected "name port/protocol", got "${body}"`);
      continue;
    }
    out.push({ name, port, protocol: (m[2] ?? '').toLowerCase(), aliases: fields.slice(2) });
  }
  return out;
}

/** A services database with lookups in both directions, first entry wins (as in glibc). */
export class ServiceDatabase {
  readonly entries: readonly ServiceEntry[];

  constructor(entries: readonly ServiceEntry[]) {
    this.entries = entries;
  }

  /** Read a file in services(5) format. */
  static fromFile(path: string, options: { strict?: boolean; withSwitchboard?: boolean } = {}): ServiceDatabase {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new SwitchboardError('ENOENT', `cannot read services file ${path}: ${(err as Error).message}`, { cause: err });
    }
    const parsed = parseServices(text, { file: path, ...(options.strict === undefined ? {} : { strict: options.strict }) });
    return new ServiceDatabase(options.withSwitchboard === false ? parsed : [...parsed, ...SWITCHBOARD_SERVICES]);
  }

  /** getservbyname(3): by name or alias, optionally for one protocol. */
  byName(name: string, protocol?: ServiceProtocol): ServiceEntry | undefined {
    const proto = protocol?.toLowerCase();
    return this.entries.find(
      (e) => (proto === undefined || e.protocol === proto) && (e.name === name || e.aliases.includes(name)),
    );
  }

  /** getservbyport(3). */
  byPort(port: number, protocol?: ServiceProtocol): ServiceEntry | undefined {
    const proto = protocol?.toLowerCase();
    return this.entries.find((e) => e.port === port && (proto === undefined || e.protocol === proto));
  }
}

export const DEFAULT_SERVICES_FILE = '/etc/services';

let systemDb: ServiceDatabase | undefined;

/** The system database (/etc/services plus Switchboard's own names), read once. */
export function systemServices(): ServiceDatabase {
  if (systemDb === undefined) {
    try {
      systemDb = ServiceDatabase.fromFile(DEFAULT_SERVICES_FILE);
    } catch {
      // A machine without /etc/services still knows Switchboard's own names.
      systemDb = new ServiceDatabase(SWITCHBOARD_SERVICES);
    }
  }
  return systemDb;
}

export function getServiceByName(name: string, protocol?: ServiceProtocol, db = systemServices()): ServiceEntry | undefined {
  return db.byName(name, protocol);
}

export function getServiceByPort(port: number, protocol?: ServiceProtocol, db = systemServices()): ServiceEntry | undefined {
  return db.byPort(port, protocol);
}

/**
 * Accept a port wherever a port is expected: a number, a numeric string, or a
 * service name looked up for `protocol`. Throws ArgumentError otherwise.
 */
export function resolvePort(port: number | string, protocol: ServiceProtocol = 'tcp', db?: ServiceDatabase): number {
  if (typeof port === 'number') {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new ArgumentError(`port must be an integer from 0 to 65535, got ${port}`);
    }
    return port;
  }
  if (typeof port !== 'string' || port === '') throw new ArgumentError(`port must be a number or a service name, got ${String(port)}`);
  if (/^\d+$/.test(port)) return resolvePort(Number(port), protocol);
  const entry = (db ?? systemServices()).byName(port, protocol);
  if (entry === undefined) throw new SwitchboardError('ENOENT', `unknown service "${port}" for ${protocol} (not in ${DEFAULT_SERVICES_FILE})`);
  return entry.port;
}
