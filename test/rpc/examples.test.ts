// The examples in examples/rpc run and print what they should.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
const example = (name: string): string => fileURLToPath(new URL(`../../examples/rpc/${name}.${ext}`, import.meta.url));

const cases: [string, RegExp[]][] = [
  ['atm-bank', [/alice has 100/, /dispensed 30, balance 70/, /refused: InsufficientFunds \(EFUNDS\)/, /alice now has 75/, /alice now has 65/]],
  ['worker-pool', [/primes below 20k\/40k\/60k\/80k: 2262, 4203, 6057, 7837/, /moved, not copied \(byteLength here now 0\)/]],
  ['log-tail', [/tail: started/, /tail: event 1 /, /tail: event 5 /]],
];

for (const [name, expected] of cases) {
  test(`examples/rpc/${name}`, () => {
    const file = example(name);
    assert.ok(existsSync(file), file);
    const r = spawnSync(process.execPath, [...process.execArgv, file], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    for (const re of expected) assert.match(r.stdout, re);
  });
}
