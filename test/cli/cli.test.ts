/** The switchboard command: --help everywhere, usage errors exit 2, failures exit 1 with the error code. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { childExecArgv } from '../transport/pairs.js';

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [...childExecArgv(), main, ...args], { encoding: 'utf8', timeout: 30_000 });

test('the built CLI is executable, so `npx switchboard` works in a fresh clone right after npm ci', () => {
  assert.ok((statSync(main).mode & 0o111) !== 0, `${main} is not executable`);
  const r = spawnSync(main, ['--help'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Usage: switchboard/);
});

test('switchboard --help lists the subcommands and exits 0', () => {
  const r = run('--help');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /services/);
});

test('every subcommand has --help', () => {
  const top = run('--help').stdout;
  const commands = [...top.matchAll(/^  ([a-z][a-z-]*)\b/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
  assert.ok(commands.length >= 1);
  for (const c of commands) {
    const r = run(c, '--help');
    assert.equal(r.status, 0, `${c} --help: ${r.stderr}`);
    assert.match(r.stdout, /Usage: switchboard/, c);
  }
});

test('switchboard services finger prints 79/tcp', () => {
  const r = run('services', 'finger');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '79/tcp');
  assert.match(run('services', '79', '--json').stdout, /"name":"finger"/);
});

test('an unknown option is a usage error (exit 2); an unknown service exits 1 with its code', () => {
  const u = run('services', 'finger', '--bogus');
  assert.equal(u.status, 2);
  assert.match(u.stderr, /unknown option/);
  assert.equal(run('no-such-command').status, 2);
  const f = run('services', 'no-such-service');
  assert.equal(f.status, 1);
  assert.match(f.stderr, /ENOENT/);
});
