/**
 * The main job (`npm start`): a name server, a bank process that registers
 * "bank", and an ATM process that finds it by name and withdraws over ONC RPC.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { childExecArgv } from '../transport/pairs.js';

const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const demo = fileURLToPath(new URL(`../../examples/demo${ext}`, import.meta.url));

test('the demo: the ATM finds the bank by name and withdraws', () => {
  const r = spawnSync(process.execPath, [...childExecArgv(), demo, '--once', '--http', '0'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /\[nameserver\] name server .* listening on/);
  assert.match(r.stdout, /\[bank \d+\] .*registered in name service/);
  assert.match(r.stdout, /\[atm \d+\] withdraw 25\.00 from alice: ok, balance 975\.00/);
  assert.match(r.stdout, /dashboard: http:\/\/127\.0\.0\.1:\d+\//);
});
