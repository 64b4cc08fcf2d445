/**
 * Inheritance in lieu of naming (seed 12.1): a child inherits pipes and
 * socketpairs as extra fds and finds them by name; both sides know each
 * other's pid (exercise 168). Works with a Node child and a shell child.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
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
