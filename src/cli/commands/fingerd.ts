/** `switchboard fingerd`: the RFC 1288 finger daemon, with the shared daemon options. */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ArgumentError, SwitchboardError } from '../../errors.js';
import { addDaemonOptions, daemonOptionsFrom, type DaemonCliOptions } from '../../daemons/cli-options.js';
import type { FingerdOptions } from '../../daemons/fingerd/server.js';

interface FingerdCliOptions extends DaemonCliOptions {
  host: string;
  port: string;
  usersDir?: string;
  config?: string;
  list: boolean;
  matchNames: boolean;
  forwarding?: boolean;
  maxHops?: string;
  forwardPort?: string;
  maxQueryBytes?: string;
  queryTimeoutMs?: string;
  connectionTimeoutMs?: string;
  maxConnections?: string;
  maxFileBytes?: string;
  maxFileLines?: string;
  utmp?: string;
  wtmp?: string;
  lastlog?: string;
  mailDir?: string;
  timeZone?: string;
}

const num = (name: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new ArgumentError(`${name} must be a positive number, got "${v}"`);
  return n;
};
const abs = (p: string | undefined): string | undefined => (p === undefined ? undefined : resolve(p));

/** Keys a --config file may set (JSON object with FingerdOptions fields). */
const CONFIG_KEYS = [
  'usersDir', 'allowList', 'matchNames', 'forwarding', 'maxHops', 'forwardPort', 'maxQueryBytes', 'maxUsers', 'maxMatches',
  'queryTimeoutMs', 'connectionTimeoutMs', 'maxConnections', 'maxForwardBytes', 'fileLimits', 'utmpPath', 'wtmpPath',
  'lastlogPath', 'mailDir', 'devDir', 'passwdFile', 'timeZone',
] as const;

async function readConfigFile(path: string): Promise<FingerdOptions> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new SwitchboardError('EINVAL', `config ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SwitchboardError('EINVAL', `config ${path}: expected a JSON object`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!(CONFIG_KEYS as readonly string[]).includes(k)) throw new SwitchboardError('EINVAL', `config ${path}: unknown key "${k}"`);
    out[k] = v;
  }
  return out as FingerdOptions;
}

export function register(program: Command): void {
  const cmd = program
    .command('fingerd')
    .description('run the finger daemon (RFC 1288): answers "finger user@host" from the passwd database, utmp and ~/.plan')
    .option('--host <address>', 'address to listen on (loopback unless told otherwise; 0.0.0.0 for every interface)', '127.0.0.1')
    .option('-p, --port <port>', 'port number or service name', 'finger')
    .option('--users-dir <dir>', 'serve the fake users in DIR/<login>/ (with .finger.json, .plan, ...) instead of the real ones')
    .option('--config <file>', 'JSON file of fingerd options, read at start and on SIGHUP (command-line options win)')
    .option('--no-list', 'refuse the {C} query (who is logged in)')
    .option('--no-match-names', 'match login names only, not real names')
    .option('--forwarding', 'forward user@host queries (refused by default)')
    .option('--max-hops <n>', 'most hosts in a forwarded query', '1')
    .option('--forward-port <port>', 'port to forward queries to', 'finger')
    .option('--max-query-bytes <n>', 'longest query line accepted', '1024')
    .option('--query-timeout-ms <ms>', 'time allowed to send the query', '10000')
    .option('--connection-timeout-ms <ms>', 'longest a connection may stay open', '30000')
    .option('--max-connections <n>', 'connections served at once; more are closed', '64')
    .option('--max-file-bytes <n>', 'bytes shown of each ~/.plan, ~/.project, ~/.pubkey', '16384')
    .option('--max-file-lines <n>', 'lines shown of each of those files', '200')
    .option('--utmp <path>', 'utmp file', '/var/run/utmp')
    .option('--wtmp <path>', 'wtmp file', '/var/log/wtmp')
    .option('--lastlog <path>', 'lastlog file', '/var/log/lastlog')
    .option('--mail-dir <dir>', 'mail spool', '/var/mail')
    .option('--time-zone <tz>', 'IANA time zone for dates (default: the local one)');
  addDaemonOptions(cmd).action(async (opts: FingerdCliOptions, command: Command) => {
    const { runDaemon } = await import('../../daemons/daemon.js');
    const { startFingerd } = await import('../../daemons/fingerd/server.js');
    const fromCli: FingerdOptions = {
      host: opts.host,
      port: opts.port,
      usersDir: abs(opts.usersDir),
      allowList: opts.list,
      matchNames: opts.matchNames,
      forwarding: opts.forwarding ?? false,
      maxHops: num('--max-hops', opts.maxHops),
      forwardPort: opts.forwardPort,
      maxQueryBytes: num('--max-query-bytes', opts.maxQueryBytes),
      queryTimeoutMs: num('--query-timeout-ms', opts.queryTimeoutMs),
      connectionTimeoutMs: num('--connection-timeout-ms', opts.connectionTimeoutMs),
      maxConnections: num('--max-connections', opts.maxConnections),
      fileLimits: { maxBytes: num('--max-file-bytes', opts.maxFileBytes), maxLines: num('--max-file-lines', opts.maxFileLines) },
      utmpPath: abs(opts.utmp),
      wtmpPath: abs(opts.wtmp),
      lastlogPath: abs(opts.lastlog),
      mailDir: abs(opts.mailDir),
      timeZone: opts.timeZone,
    };
    const configPath = abs(opts.config);
    // options given explicitly on the command line beat the config file; defaults do not
    const explicit = (key: string): boolean => command.getOptionValueSource(key) === 'cli';
    const cliKey: Partial<Record<keyof FingerdOptions, string>> = {
      usersDir: 'usersDir', allowList: 'list', matchNames: 'matchNames', forwarding: 'forwarding', maxHops: 'maxHops',
      forwardPort: 'forwardPort', maxQueryBytes: 'maxQueryBytes', queryTimeoutMs: 'queryTimeoutMs',
      connectionTimeoutMs: 'connectionTimeoutMs', maxConnections: 'maxConnections', utmpPath: 'utmp', wtmpPath: 'wtmp',
      lastlogPath: 'lastlog', mailDir: 'mailDir', timeZone: 'timeZone',
    };
    const loadConfig = async (): Promise<FingerdOptions> => {
      if (configPath === undefined) return fromCli;
      const file = await readConfigFile(configPath);
      const merged: Record<string, unknown> = { ...fromCli };
      for (const [k, v] of Object.entries(file)) {
        const flag = cliKey[k as keyof FingerdOptions];
        if (flag === undefined || !explicit(flag)) merged[k] = v;
      }
      return merged as FingerdOptions;
    };
    await runDaemon(
      {
        name: 'fingerd',
        loadConfig,
        start: (config, ctx) => startFingerd({ ...config, log: (line) => ctx.log.info(line) }),
        reload: (server, config) => server.configure(config),
      },
      { ...daemonOptionsFrom(opts), pidfile: abs(opts.pidfile), logFile: abs(opts.logFile) },
    );
  });
}
