/**
 * `npm start`: the main job. Processes that do not know each other meet
 * through the name service (seed 12.1) and talk by RPC (seed 12.2.1):
 *
 *   1. the name service starts on its well-known addresses (tcp 7117, the
 *      service `switchboard-ns`, and the well-known Unix socket) with its web
 *      dashboard on loopback;
 *   2. a bank process starts on a port nobody knows and registers `bank`;
 *   3. ATM processes look up `bank` and withdraw over ONC RPC.
 *
 * It keeps running (an ATM visit every few seconds, so the dashboard moves)
 * until Ctrl-C. `--once` exits after the first ATM; `--http PORT` picks the
 * dashboard port (default 7118, or any free one if taken).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NameClient, defaultSocketPath, startNameServer, type NameServer } from '../src/naming/index.js';

const args = process.argv.slice(2);
const once = args.includes('--once');
const httpArg = args.indexOf('--http');
const httpPort = httpArg >= 0 ? Number(args[httpArg + 1]) : 7118;
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const here = (p: string): string => fileURLToPath(new URL(p + ext, import.meta.url));
const nodeArgs = process.execArgv.filter((a) => !a.startsWith('--test'));
const say = (who: string, line: string): void => void process.stdout.write(`[${who}] ${line}\n`);

const children = new Set<ChildProcess>();
function run(who: string, script: string, argv: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, [...nodeArgs, script, ...argv], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const relay = (stream: NodeJS.ReadableStream): void => {
    let buf = '';
    stream.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        say(`${who} ${child.pid}`, buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
  };
  relay(child.stdout!);
  relay(child.stderr!);
  child.once('exit', () => children.delete(child));
  return child;
}

// 1. The name service on its well-known addresses, or the one already running there.
const dataDir = mkdtempSync(join(tmpdir(), 'switchboard-demo-'));
let ns: NameServer | undefined;
let nsAddress: string;
try {
  ns = await startNameServer({
    listen: [`unix://${defaultSocketPath()}`, 'tcp://127.0.0.1:7117'],
    dataDir,
    http: httpPort,
    log: (line) => say('nameserver', line),
  });
  nsAddress = ns.addresses[0]!;
} catch (err) {
  const probe = await NameClient.connect({ timeoutMs: 2000 }).catch(() => undefined);
  if (probe) {
    // a name server already holds the well-known addresses: use it, as any client would
    await probe.close();
    nsAddress = process.env['SWITCHBOARD_NAMESERVER'] ?? `unix://${defaultSocketPath()}`;
    say('demo', `a name server is already running; using it (${nsAddress})`);
  } else {
    // the well-known port or dashboard port is taken by something else: run privately
    say('demo', `well-known addresses unavailable (${(err as Error).message}); using private ones`);
    ns = await startNameServer({ listen: [`unix://${join(dataDir, 'ns.sock')}`], dataDir, http: 0, log: (l) => say('nameserver', l) });
    nsAddress = ns.addresses[0]!;
  }
}
if (ns?.httpUrl) say('demo', `dashboard: ${ns.httpUrl}  (names: switchboard names list)`);
const env = { ...process.env, SWITCHBOARD_NAMESERVER: nsAddress };

let stopping = false;
async function stop(code: number): Promise<never> {
  stopping = true;
  for (const c of children) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  await ns?.close();
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(code);
}
process.once('SIGINT', () => void stop(0));
process.once('SIGTERM', () => void stop(0));

// 2. The bank: listens on a port nobody knows, and says so only to the name service.
const bank = run('bank', here('./bank/run-server'), ['tcp://127.0.0.1:0'], env);
bank.once('exit', (code) => {
  if (!stopping) {
    say('demo', `the bank exited (${code}); stopping`);
    void stop(1);
  }
});

// 3. ATMs: each a fresh process that knows only the string "bank".
function atm(account: string, amount: string): Promise<number> {
  const p = run('atm', here('./bank/run-atm'), [account, amount], env);
  return new Promise((resolve) => p.once('exit', (code) => resolve(code ?? 1)));
}

const first = await atm('alice', '25.00');
if (once) await stop(first);
const visits: [string, string][] = [
  ['bob', '10.00'],
  ['alice', '40.00'],
  ['carol', '5.00'],
  ['bob', '100.00'],
];
let i = 0;
setInterval(() => {
  if (stopping) return;
  const [account, amount] = visits[i++ % visits.length]!;
  void atm(account, amount);
}, 5000);
say('demo', 'running; an ATM visits the bank every 5 s. Ctrl-C to stop.');
