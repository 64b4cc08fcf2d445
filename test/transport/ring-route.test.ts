/** shm:<name> through the transport's own connect()/listen(): a ring pair is one more kind of Channel. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SwitchboardError } from '../../src/errors.js';
import { connect, listen } from '../../src/transport/index.js';
import { readBytes } from './pairs.js';

test('listen("shm:name") and connect("shm:name") give a connected ring Channel', async () => {
  const name = `sbtest.route.${process.pid}.${Date.now()}`;
  const l = await listen(`shm:${name}`);
  const [c, s] = await Promise.all([connect(`shm:${name}`, { timeoutMs: 5000 }), l.accept()]);
  try {
    assert.equal(c.kind, 'ring');
    await c.write(Buffer.from('over shared memory'));
    assert.equal((await readBytes(s, 18)).toString(), 'over shared memory');
    await s.write(Buffer.from('and back'));
    assert.equal((await readBytes(c, 8)).toString(), 'and back');
    await assert.rejects(l.accept(), (e: SwitchboardError) => e.code === 'ECLOSED');
  } finally {
    await c.close();
    await s.close();
    await l.close();
  }
});

test('connect to an shm name nobody listens on times out with ENOENT', async () => {
  await assert.rejects(connect('shm:sbtest.nobody-here', { timeoutMs: 100 }), (e: SwitchboardError) => e.code === 'ENOENT');
});
