/**
 * Message passing across hosts: three network namespaces on a private
 * bridge (created by /work/shared/tools/netns-hosts and removed after), the
 * launcher in the first, one rank per host over TCP. Skipped, with the
 * reason, where namespaces cannot be made.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { APP, runCli } from '../mp/launch-helpers.js';

const TOOL = '/work/shared/tools/netns-hosts';
const PREFIX = `mp${process.pid % 100000}`;
let hosts: { name: string; address: string }[] = [];
let skip: string | false = false;

before(() => {
  if (!existsSync(TOOL)) {
    skip = `${TOOL} is not there`;
    return;
  }
  const r = spawnSync(TOOL, ['up', PREFIX, '3'], { encoding: 'utf8' });
  if (r.status === 3) {
    skip = `network namespaces are not allowed here: ${r.stderr.trim()}`;
    return;
  }
  if (r.status !== 0) throw new Error(`netns-hosts up failed: ${r.stderr}`);
  hosts = r.stdout
    .trim()
    .split('\n')
    .map((l) => {
      const [name, address] = l.split(' ');
      return { name: name!, address: address! };
    });
});

after(() => {
  if (hosts.length > 0) spawnSync(TOOL, ['down', PREFIX]);
});

test('three ranks on three hosts meet over TCP through a private name server', async (t) => {
  if (skip) return t.skip(skip);
  const names = hosts.map((h) => h.name).join(',');
  const r = await runCli(['run', '-n', '3', '--hosts', names, APP], { prefix: ['ip', 'netns', 'exec', hosts[0]!.name] });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').sort();
  assert.equal(lines.length, 3, r.stdout);
  for (let i = 0; i < 3; i++) assert.match(lines[i]!, new RegExp(`^rank ${i}/3 via tcp sum=6`));
  const expected = hosts.map((h, i) => `${i}@${h.address}`).join(',');
  assert.match(r.stdout, new RegExp(`hosts=${expected.replace(/\./g, '\\.')}`), 'each rank ran on its own host');
});

test('a rank that dies on another host is named, and the job exits non-zero', async (t) => {
  if (skip) return t.skip(skip);
  const names = hosts.map((h) => h.name).join(',');
  const r = await runCli(['run', '-n', '3', '--grace', '3000', '--hosts', names, APP, 'die'], { prefix: ['ip', 'netns', 'exec', hosts[0]!.name] });
  assert.equal(r.code, 9, r.stderr);
  assert.match(r.stderr, new RegExp(`rank 1 \\(pid \\d+ on ${hosts[1]!.name}\\) died: exited with code 9`));
});
