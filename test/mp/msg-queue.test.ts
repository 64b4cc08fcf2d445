/**
 * MsgQueue (the engine's unexpected queue) behaves exactly like an array used
 * as a FIFO with removal anywhere and put-back at the front (property test
 * against a plain array, through its compaction points), and a long queue
 * drains in order through many compactions. (Its speed is a benchmark
 * matter: the array shift it replaces cost 8 us per message at 100,000
 * queued.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MsgQueue } from '../../src/mp/msg-queue.js';

test('MsgQueue matches an array model under push, removeAt and unshift (property)', () => {
  const op = fc.oneof(
    fc.record({ k: fc.constant('push' as const), n: fc.integer({ min: 1, max: 3000 }) }),
    fc.record({ k: fc.constant('take' as const), n: fc.integer({ min: 1, max: 3000 }) }),
    fc.record({ k: fc.constant('removeAt' as const), n: fc.nat() }),
    fc.record({ k: fc.constant('unshift' as const), n: fc.integer({ min: 1, max: 3 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      const q = new MsgQueue<number>();
      const model: number[] = [];
      let next = 0;
      for (const o of ops) {
        if (o.k === 'push') for (let i = 0; i < o.n; i++) (q.push(next), model.push(next++));
        else if (o.k === 'take') for (let i = 0; i < o.n && model.length > 0; i++) (q.removeAt(0), model.shift());
        else if (o.k === 'removeAt' && model.length > 0) {
          const i = o.n % model.length;
          q.removeAt(i);
          model.splice(i, 1);
        } else if (o.k === 'unshift') for (let i = 0; i < o.n; i++) (q.unshift(-next), model.unshift(-next++));
        assert.equal(q.length, model.length);
        if (model.length > 0) {
          assert.equal(q.at(0), model[0]);
          assert.equal(q.at(model.length - 1), model[model.length - 1]);
          const mid = model.length >> 1;
          assert.equal(q.at(mid), model[mid]);
        }
      }
      assert.deepEqual(Array.from({ length: q.length }, (_, i) => q.at(i)), model);
    }),
    { numRuns: 200 },
  );
});

test('MsgQueue: 200,000 messages taken from the front come out once each, in order, through many compactions', () => {
  const q = new MsgQueue<{ i: number }>();
  for (let i = 0; i < 200_000; i++) q.push({ i });
  let expect = 0;
  while (q.length > 0) {
    assert.equal(q.at(0).i, expect++);
    q.removeAt(0);
  }
  assert.equal(expect, 200_000);
});
