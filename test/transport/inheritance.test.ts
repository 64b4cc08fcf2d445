/**
 * Inheritance in lieu of naming (seed 12.1): a child inherits pipes and
 * socketpairs as extra fds and finds them by name; both sides know each
 * other's pid (exercise 168). Works with a Node child and a shell child.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SwitchboardError } from '../../src/errors.js';
import { spawnWithChannels } from '../../src/transport/index.js';
import { childExecArgv, readAll, readBytes, tempDir } from './pairs.js';

const transportIndex = fileURLToPath(new URL('../../src/transport/index.js', import.meta.url));

test('a Node child gets its channels by name and both sides know each other\'s pid', async () => {
  const t = tempDir();
  try {
    const script = join(t.dir, 'child.mjs');
    writeFileSync(
      script,
      `import { inheritedChannels, parentPid } from ${JSON.stringify(transportIndex)};
       const { ctl, jobs, results } = inheritedChannels();
       await ctl.write(Buffer.from(JSON.stringify({ pid: process.pid, parent: parentPid(), peer: ctl.peer.pid })));
       let text = '';
       for await (const c of jobs) text += Buffer.from(c).toString();
       await results.write(Buffer.from(text.toUpperCase()));
       await results.close();
       await ctl.close();`,
    );
    const kid = await spawnWithChannels(process.execPath, [...childExecArgv(), script], {
      channels: { ctl: 'socketpair', jobs: 'pipe-to-child', results: 'pipe-from-child' },
    });
    const hello = JSON.parse((await kid.channels['ctl']!.read())!.toString()) as { pid: number; parent: number; peer: number };
    assert.equal(hello.pid, kid.pid);
    assert.equal(hello.parent, process.pid);
    assert.equal(hello.peer, process.pid);
    assert.equal(kid.channels['ctl']!.peer.pid, kid.pid);
    await kid.channels['jobs']!.write(Buffer.from('work item'));
    await kid.channels['jobs']!.close();
    assert.equal((await readAll(kid.channels['results']!)).toString(), 'WORK ITEM');
    assert.equal((await kid.exited).code, 0);
    for (const c of Object.values(kid.channels)) c.destroy();
  } finally {
    t.remove();
  }
});

test('a shell child reads fd 3 and writes fd 4, with no naming service', async () => {
  const kid = await spawnWithChannels('sh', ['-c', 'read line <&3; echo "got $line from $SWITCHBOARD_PARENT_PID" >&4'], {
    channels: { input: 'pipe-to-child', output: 'pipe-from-child' },
  });
  await kid.channels['input']!.write(Buffer.from('hello\n'));
  const out = await readAll(kid.channels['output']!);
  assert.equal(out.toString(), `got hello from ${process.pid}\n`);
  assert.equal((await kid.exited).code, 0);
  kid.channels['input']!.destroy();
});

test('the parent sees EOF when the child exits (its copy of the child end is closed)', async () => {
  const kid = await spawnWithChannels('sh', ['-c', 'printf x >&3; exit 0'], { channels: { c: 'socketpair' } });
  assert.equal((await readBytes(kid.channels['c']!, 10)).toString(), 'x');
  kid.channels['c']!.destroy();
  await kid.exited;
});

test('bad arguments: missing program, bad channel names and specs are typed errors', async () => {
  await assert.rejects(spawnWithChannels('/no/such/program', [], { channels: { a: 'socketpair' } }), (e: SwitchboardError) => e.code === 'ENOENT');
  await assert.rejects(spawnWithChannels('sh', [], { channels: { '1bad': 'socketpair' } }), (e: SwitchboardError) => e.code === 'EINVAL');
  await assert.rejects(spawnWithChannels('sh', [], { channels: { a: 'carrier-pigeon' as 'socketpair' } }), (e: SwitchboardError) => e.code === 'EINVAL');
  await assert.rejects(spawnWithChannels('', [], { channels: {} }), (e: SwitchboardError) => e.code === 'EINVAL');
});

const fdCount = (): number => readdirSync('/proc/self/fd').length;
const listFds = (pid: number): number[] =>
  readdirSync(`/proc/${pid}/fd`)
    .map(Number)
    .sort((a, b) => a - b);

/**
 * The fds of a process once it has finished starting: right after exec the
 * dynamic loader still holds ld.so.cache, libc and locale files open, so wait
 * until it sleeps and its fd table stops changing.
 */
async function fdsOf(pid: number): Promise<number[]> {
  let last = '';
  for (let i = 0; i < 300; i++) {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
    const now = listFds(pid);
    if (state === 'S' && now.join() === last) return now;
    last = state === 'S' ? now.join() : '';
    await new Promise((r) => setTimeout(r, 10));
  }
  return listFds(pid);
}

/** Fds this process inherited without close-on-exec from whoever started it: every child gets those. */
async function foreignFds(): Promise<number[]> {
  const plain = spawn('sleep', ['30'], { stdio: 'ignore' });
  await new Promise((r) => plain.once('spawn', r));
  const fds = (await fdsOf(plain.pid!)).filter((fd) => fd > 2);
  plain.kill('SIGKILL');
  await new Promise((r) => plain.once('exit', r));
  return fds;
}

test('the child gets exactly stdio and the fds asked for; the parent keeps only its own ends', async () => {
  const foreign = await foreignFds();
  const before = fdCount();
  const kid = await spawnWithChannels('sleep', ['30'], {
    channels: { a: 'socketpair', b: 'pipe-to-child', c: 'pipe-from-child' },
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  try {
    assert.deepEqual(await fdsOf(kid.pid), [0, 1, 2, 3, 4, 5, ...foreign]);
    assert.equal(fdCount(), before + 3, 'one fd per channel in the parent: its copies of the child ends are closed');
  } finally {
    kid.child.kill('SIGKILL');
    for (const c of Object.values(kid.channels)) c.destroy();
    await kid.exited;
    await Promise.all(Object.values(kid.channels).map((c) => c.closed));
  }
  assert.equal(fdCount(), before);
});

test('a missing program or a spawn that throws leaves no fd behind and rejects with a typed error', async () => {
  const before = fdCount();
  for (let i = 0; i < 5; i++) {
    await assert.rejects(
      spawnWithChannels('/no/such/program', [], { channels: { a: 'socketpair', b: 'pipe-to-child', c: 'pipe-from-child' } }),
      (e: SwitchboardError) => e.code === 'ENOENT',
    );
  }
  assert.equal(fdCount(), before, 'ENOENT');
  // a NUL byte in an argument makes child_process.spawn throw synchronously
  let result: unknown;
  try {
    result = await spawnWithChannels('sh', ['-c', 'exit 0\0'], { channels: { a: 'socketpair', b: 'pipe-to-child' } }).catch((e: unknown) => e);
  } catch (e) {
    result = `threw synchronously: ${String(e)}`;
  }
  assert.ok(result instanceof SwitchboardError, `expected a rejected SwitchboardError, got ${String(result)}`);
  assert.equal(result.code, 'EINVAL');
  assert.equal(fdCount(), before, 'synchronous spawn failure');
});

test('inherited fds are close-on-exec in the child: its own children do not inherit them', async () => {
  const t = tempDir();
  try {
    const script = join(t.dir, 'middle.mjs');
    writeFileSync(
      script,
      `import { spawn } from 'node:child_process';
       import { inheritedChannels } from ${JSON.stringify(transportIndex)};
       const { ctl } = inheritedChannels();
       const gc = spawn('sleep', ['30'], { stdio: 'ignore' });
       await new Promise((r) => gc.once('spawn', r));
       await ctl.write(Buffer.from(String(gc.pid)));
       await ctl.read(); // until the parent is done looking
       gc.kill('SIGKILL');
       await ctl.close();`,
    );
    const foreign = await foreignFds();
    const kid = await spawnWithChannels(process.execPath, [...childExecArgv(), script], { channels: { ctl: 'socketpair' } });
    const ctl = kid.channels['ctl']!;
    try {
      const gcPid = Number(Buffer.from((await ctl.read())!).toString());
      assert.ok(gcPid > 0);
      const fds = await fdsOf(gcPid);
      const links = fds.map((fd) => `${fd} -> ${readlinkSync(`/proc/${gcPid}/fd/${fd}`)}`);
      assert.deepEqual(fds, [0, 1, 2, ...foreign], `the grandchild holds none of the inherited channels: ${links.join(', ')}`);
      await ctl.write(Buffer.from('done'));
      assert.equal((await kid.exited).code, 0);
    } finally {
      kid.child.kill('SIGKILL');
      ctl.destroy();
    }
  } finally {
    t.remove();
  }
});
