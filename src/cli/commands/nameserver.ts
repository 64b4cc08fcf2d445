/** `switchboard nameserver`: run the name-service daemon (seed 12.1). */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ArgumentError } from '../../errors.js';
import { addDaemonOptions, daemonOptionsFrom, type DaemonCliOptions } from '../../daemons/cli-options.js';

interface Opts extends DaemonCliOptions {
  listen?: string[];
  dataDir?: string;
  memory?: boolean;
  store: string;
  http?: string;
  secret?: string;
  secretFile?: string;
  socketMode?: string;
  socketGroup?: string;
  grace?: string;
  restartGrace?: string;
  maxNamesPerClient?: string;
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

function int(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new ArgumentError(`${what} must be a non-negative integer, got "${v}"`);
  return Number(v);
}

export function register(program: Command): void {
  const cmd = program
    .command('nameserver')
    .description(
      'run the name server: processes register names with contact information, others look them up (seed 12.1). ' +
        'Listens on the well-known Unix socket and tcp://127.0.0.1:7117 (service switchboard-ns) unless --listen is given.',
    )
    .option('-l, --listen <address>', 'address to listen on (repeatable or comma-separated): unix:///path, tcp://host:port', collect)
    .option('-d, --data-dir <dir>', 'journal directory of the embedded store (default $XDG_STATE_HOME/switchboard/ns)')
    .option('--memory', 'embedded store without a journal: names do not survive a restart')
    .option('-s, --store <spec>', "'embedded' or etcd://host:port[,host:port]", 'embedded')
    .option('--http <port>', 'serve the dashboard on this loopback port (or 127.0.0.1:port)')
    .option('--secret <secret>', 'shared secret TCP clients must prove (also $SWITCHBOARD_NS_SECRET)')
    .option('--secret-file <path>', 'read the shared secret from this file')
    .option('--socket-mode <octal>', 'permissions of the Unix socket (default 600; 660 to let a group in)')
    .option('--socket-group <group>', 'group (name or gid) of the Unix socket')
    .option('--grace <ms>', 'how long names outlive their owner connection (default 2000)')
    .option('--restart-grace <ms>', 'how long recovered names wait for their owners after a restart (default 30000)')
    .option('--max-names-per-client <n>', 'names one client connection may hold (default 10000)');
  addDaemonOptions(cmd).action(async (opts: Opts) => {
      const { startNameServer, defaultDataDir } = await import('../../naming/index.js');
      const { runDaemon } = await import('../../daemons/daemon.js');
      let secret = opts.secret ?? process.env['SWITCHBOARD_NS_SECRET'];
      if (opts.secretFile !== undefined) secret = readFileSync(opts.secretFile, 'utf8').trim();
      const socketMode = opts.socketMode === undefined ? undefined : parseInt(opts.socketMode, 8);
      if (socketMode !== undefined && (!Number.isInteger(socketMode) || socketMode < 0 || socketMode > 0o777)) {
        throw new ArgumentError(`--socket-mode must be octal like 600 or 660, got "${opts.socketMode}"`);
      }
      const maxNames = int(opts.maxNamesPerClient, '--max-names-per-client');
      const grace = int(opts.grace, '--grace');
      const restartGrace = int(opts.restartGrace, '--restart-grace');
      const embedded = opts.store === 'embedded';
      const nsOptions = {
        ...(opts.listen !== undefined ? { listen: opts.listen } : {}),
        ...(embedded && opts.memory !== true ? { dataDir: opts.dataDir ?? defaultDataDir() } : {}),
        store: opts.store,
        ...(opts.http !== undefined ? { http: /^\d+$/.test(opts.http) ? Number(opts.http) : opts.http } : {}),
        ...(secret !== undefined ? { secret } : {}),
        ...(socketMode !== undefined ? { socketMode } : {}),
        ...(opts.socketGroup !== undefined ? { socketGroup: opts.socketGroup } : {}),
        ...(grace !== undefined ? { graceMs: grace } : {}),
        ...(restartGrace !== undefined ? { restartGraceMs: restartGrace } : {}),
        ...(maxNames !== undefined ? { limits: { maxNamesPerClient: maxNames } } : {}),
      };
      const abs = (p: string | undefined): string | undefined => (p === undefined ? undefined : resolve(p));
      // The daemon habits (seed 12.4): --daemon, --pidfile, --log-file, --user, SIGTERM finishes requests, SIGHUP reopens the log.
      const running = await runDaemon(
        {
          name: 'switchboard-ns',
          start: async (_config: undefined, ctx) => {
            const server = await startNameServer({ ...nsOptions, log: (line) => ctx.log.info(line) });
            return Object.assign(server, { description: `listening on ${server.addresses.join(' ')}${server.httpUrl ? `, dashboard ${server.httpUrl}` : ''}` });
          },
        },
        { ...daemonOptionsFrom(opts), pidfile: abs(opts.pidfile), logFile: abs(opts.logFile) },
      );
      const server = running.server;
      // One machine-readable line for scripts and tests.
      process.stdout.write(`${JSON.stringify({ listening: server.addresses, http: server.httpUrl ?? null, pid: process.pid })}\n`);
      await running.stopped;
    });
}
