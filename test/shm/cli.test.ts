/** `switchboard shm ls|rm`. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createRegion, NamedSemaphore } from '../../src/shm/index.js';
import { execArgv, uniqueName } from './helpers.js';

const ext = fileURLToPath(import.meta.url).endsWith('.ts') ? 'ts' : 'js';
const main = fileURLToPath(new URL(`../../src/cli/main.${ext}`, import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [...execArgv(), main, 'shm', ...args], { encoding: 'utf8', timeout: 30_000 });

test('shm ls shows regions with their attached processes; rm removes by name or --stale', () => {
  const live = uniqueName('cli-live');
  const stale = uniqueName('cli-stale');
  const sem = uniqueName('cli-sem');
  const r = createRegion(live, 1000);
  createRegion(stale, 2000).close();
  NamedSemaphore.open(sem, { create: true }).close();
  try {
    const ls = run('ls', '--json');
    assert.equal(ls.status, 0, ls.stderr);
    const entries = JSON.parse(ls.stdout) as { name: string; kind: string; stale?: boolean; attached?: { pid: number }[] }[];
    const byName = new Map(entries.map((e) => [e.name, e]));
    assert.equal(byName.get(live)?.stale, false);
    assert.deepEqual(byName.get(live)?.attached?.map((a) => a.pid), [process.pid]);
    assert.equal(byName.get(stale)?.stale, true);
    assert.equal(byName.get(sem)?.kind, 'semaphore');
    assert.match(run('ls').stdout, new RegExp(`${stale}.*stale`));

    const dry = run('rm', '--stale', '--dry-run');
    assert.match(dry.stdout, new RegExp(`would remove region ${stale}`));
    assert.doesNotMatch(dry.stdout, new RegExp(live));
    assert.ok(existsSync(`/dev/shm/sb.${stale}`));
    const rm = run('rm', stale, sem);
    assert.equal(rm.status, 0, rm.stderr);
    assert.ok(!existsSync(`/dev/shm/sb.${stale}`));
    assert.ok(!existsSync(`/dev/shm/sem.sb.${sem}`));
    assert.ok(existsSync(`/dev/shm/sb.${live}`));

    const missing = run('rm', stale);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /ENOENT/);
    assert.equal(run('rm').status, 1, 'nothing to remove is an error');
    assert.equal(run('rm', '--bogus').status, 2);
    for (const sub of [[], ['ls'], ['rm']]) assert.match(run(...sub, '--help').stdout, /Usage: switchboard shm/);
  } finally {
    r.close();
    r.unlink();
  }
});
