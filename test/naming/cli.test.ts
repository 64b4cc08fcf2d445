/** `switchboard nameserver` and `switchboard names ...`, run as real processes. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { nodeArgsFor } from './child-daemon.js';
import { tempDir } from './helpers.js';

const cli = nodeArgsFor('../../src/cli/main');
const dir = tempDir();
const sock = `unix://${join(dir, 'ns.sock')}`;
let daemon: ChildProcess | undefined;
const background: ChildProcess[] = [];

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...cli, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Start a long-running CLI process and resolve with its first stdout line. */
function start(args: string[]): Promise<{ child: ChildProcess; first: string; lines: string[] }> {
  const child = spawn(process.execPath, [...cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  background.push(child);
  const lines: string[] = [];
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no output from ${args.join(' ')}: ${err}`)), 20_000);
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
      if (lines.length > 0) {
        clearTimeout(timer);
        resolve({ child, first: lines[0] as string, lines });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(' ')} exited with ${code}: ${err}`));
    });
  });
}

async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const done = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  if (child.pid !== undefined) process.kill(child.pid, signal);
  return done;
}

before(async () => {
  const s = await start(['nameserver', '--listen', `${sock},tcp://127.0.0.1:0`, '--memory', '--grace', '300']);
  daemon = s.child;
  const info = JSON.parse(s.first) as { listening: string[] };
  assert.equal(info.listening[0], sock);
  assert.match(info.listening[1] ?? '', /^tcp:\/\/127\.0\.0\.1:\d+$/);
});
after(async () => {
  for (const c of background) await stop(c, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('nameserver --help and names --help describe the options', () => {
  const h = run(['nameserver', '--help']);
  assert.equal(h.status, 0);
  for (const opt of ['--listen', '--data-dir', '--store', '--http', '--secret', '--socket-mode']) assert.match(h.stdout, new RegExp(opt));
  const n = run(['names', '--help']);
  assert.equal(n.status, 0);
  for (const sub of ['register', 'lookup', 'list', 'watch', 'rm']) assert.match(n.stdout, new RegExp(sub));
});

test('register holds a name; lookup, list, watch and rm see it, in human form and JSON', { timeout: 90_000 }, async () => {
  const reg = await start(['names', '--server', sock, '--json', 'register', 'cli/printer', 'tcp://127.0.0.1:631', '-p', 'ipp', '-m', 'room=2.14']);
  const { token } = JSON.parse(reg.first) as { token: string };
  assert.ok(token.length > 10);

  const look = run(['names', '--server', sock, 'lookup', 'cli/printer']);
  assert.equal(look.status, 0, look.stderr);
  assert.match(look.stdout, /address:\s+tcp:\/\/127\.0\.0\.1:631/);
  assert.match(look.stdout, /protocol:\s+ipp/);
  assert.match(look.stdout, /metadata: \{"room":"2.14"\}/);
  assert.match(look.stdout, /lease:\s+live/);

  const lj = JSON.parse(run(['names', '--server', sock, '--json', 'lookup', 'cli/printer']).stdout) as { contact: { address: string } };
  assert.equal(lj.contact.address, 'tcp://127.0.0.1:631');

  const list = run(['names', '--server', sock, 'list', 'cli/']);
  assert.match(list.stdout, /^NAME\s+ADDRESS\s+PROTOCOL\s+OWNER/m);
  assert.match(list.stdout, /cli\/printer\s+tcp:\/\/127\.0\.0\.1:631\s+ipp\s+switchboard-cli\[\d+\]/);
  assert.match(run(['names', '--server', sock, 'list', 'nothing/']).stdout, /no names start with "nothing\/"/);

  const taken = run(['names', '--server', sock, 'register', 'cli/printer', 'tcp://127.0.0.1:632']);
  assert.equal(taken.status, 1);
  assert.match(taken.stderr, /held by "switchboard-cli" \(pid \d+.*\) since .*\[ENAMETAKEN\]/);

  // watch prints nothing until an event: start it, wait for it to say so on stderr, then make one.
  const w = spawn(process.execPath, [...cli, 'names', '--server', sock, '--json', 'watch', 'cli/', '--prefix'], { stdio: ['ignore', 'pipe', 'pipe'] });
  background.push(w);
  let wout = '';
  w.stdout?.on('data', (d: Buffer) => (wout += d.toString()));
  await new Promise<void>((resolve) => w.stderr?.on('data', (d: Buffer) => d.toString().includes('watching') && resolve()));

  const noToken = run(['names', '--server', sock, 'rm', 'cli/printer']);
  assert.equal(noToken.status, 1);
  assert.match(noToken.stderr, /ENOTOWNER/);
  const rm = run(['names', '--server', sock, 'rm', 'cli/printer', '--token', token]);
  assert.equal(rm.status, 0, rm.stderr);
  assert.equal(rm.stdout.trim(), 'removed cli/printer');
  const deadline = Date.now() + 10_000;
  while (!wout.includes('"removed"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const ev = JSON.parse(wout.trim().split('\n')[0] ?? '{}') as { type: string; record: { name: string } };
  assert.equal(ev.type, 'removed');
  assert.equal(ev.record.name, 'cli/printer');
  assert.equal(await stop(w, 'SIGINT'), 0);

  const gone = run(['names', '--server', sock, 'lookup', 'cli/printer']);
  assert.equal(gone.status, 1);
  assert.match(gone.stderr, /no name "cli\/printer" is registered \[ENOENT\]/);
  await stop(reg.child);
});

test('usage errors exit 2', () => {
  assert.equal(run(['names', 'register', 'only-a-name']).status, 2);
});
