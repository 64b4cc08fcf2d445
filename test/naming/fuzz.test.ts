/**
 * Bad input: 10,000 random, corrupted and truncated frames, each on its own
 * connection, get nothing from the daemon but an error reply (then a close),
 * while a well-behaved client keeps working beside them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameDecoder, FrameType, NameClient, encodeFrame, encodeLookupFrame, encodeRecordFrame, type Frame } from '../../src/naming/index.js';
import { connect } from '../../src/transport/index.js';
import { contact, startTestServer } from './helpers.js';

const validRequest = fc.oneof(
  fc.record({ op: fc.constant('lookup'), name: fc.string({ maxLength: 20 }) }),
  fc.record({ op: fc.constant('register'), name: fc.string(), contact: fc.record({ address: fc.string(), protocol: fc.string() }) }),
  fc.record({ op: fc.constant('watch'), key: fc.string(), prefix: fc.boolean() }),
);

/** One bad input: the bytes a hostile or broken client sends before closing its side. */
const badInput: fc.Arbitrary<Uint8Array> = fc.oneof(
  // random bytes
  fc.uint8Array({ minLength: 1, maxLength: 64 }),
  // a valid frame cut short
  fc.tuple(validRequest, fc.integer({ min: 0, max: 0xffff }), fc.nat()).map(([p, id, cut]) => {
    const f = encodeFrame({ type: FrameType.request, id, payload: p });
    return f.subarray(0, 1 + (cut % (f.length - 1)));
  }),
  // a valid frame with one byte of its header corrupted
  fc.tuple(validRequest, fc.integer({ min: 4, max: 7 }), fc.integer({ min: 1, max: 255 })).map(([p, at, x]) => {
    const f = encodeFrame({ type: FrameType.request, id: 1, payload: p });
    f[at] = (f[at] as number) ^ x;
    return f;
  }),
  // a huge or tiny length word with a random body
  fc.tuple(fc.constantFrom(0, 1, 7, 0x10000000, 0xffffffff), fc.uint8Array({ maxLength: 32 })).map(([len, body]) => {
    const out = new Uint8Array(4 + body.length);
    new DataView(out.buffer).setUint32(0, len);
    out.set(body, 4);
    return out;
  }),
  // well-framed JSON that is not a request
  fc.jsonValue({ maxDepth: 2 }).map((v) => encodeFrame({ type: FrameType.request, id: 3, payload: v })),
  // a frame type a client may not send
  fc.constantFrom(FrameType.response, FrameType.error, FrameType.event).map((t) => encodeFrame({ type: t, id: 1, payload: {} })),
  // version 2: a binary lookup frame cut short, or marked version 1; a record frame from a client
  fc.tuple(fc.string({ maxLength: 20 }), fc.nat()).map(([name, cut]) => {
    const f = encodeLookupFrame(1, name);
    return f.subarray(0, 1 + (cut % (f.length - 1)));
  }),
  fc.string({ minLength: 1, maxLength: 20 }).map((name) => {
    const f = encodeLookupFrame(1, name);
    f[5] = 1;
    return f;
  }),
  fc.constant(encodeRecordFrame({ name: 'x', contact: { address: 'a', protocol: 'p' }, owner: { client: 'c' }, since: 0 })),
);

test('10,000 random and truncated frames get only error replies; another client keeps working', { timeout: 170_000 }, async () => {
  const ts = await startTestServer();
  const good = await NameClient.connect({ address: ts.unix, clientName: 'good' });
  try {
    await good.register('fuzz/good', contact(1));
    let stop = false;
    let goodOps = 0;
    const goodLoop = (async () => {
      while (!stop) {
        const r = await good.lookup('fuzz/good');
        assert.equal(r.contact.address, 'tcp://127.0.0.1:1');
        goodOps++;
        await new Promise((res) => setTimeout(res, 2));
      }
    })();

    const inputs = fc.sample(badInput, { numRuns: 10_000, seed: 4242 });
    const outcomes = { errorReply: 0, validReply: 0 };
    const codes = new Map<string, number>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < inputs.length) {
        const bytes = inputs[next++] as Uint8Array;
        const ch = await connect(ts.unix);
        try {
          await ch.write(bytes).catch(() => undefined);
          await ch.end().catch(() => undefined);
          const dec = new FrameDecoder(1 << 20);
          const frames: Frame[] = [];
          for (;;) {
            const c = await ch.read().catch(() => null);
            if (c === null) break;
            frames.push(...dec.push(c));
          }
          // First the greeting, then exactly one reply, then the daemon closed.
          assert.equal(frames[0]?.type, FrameType.event, 'greeting first');
          const rest = frames.slice(1);
          const errors = rest.filter((f) => f.type === FrameType.error);
          if (errors.length > 0) {
            assert.equal(errors.length, 1, `one error reply, got ${JSON.stringify(rest)}`);
            outcomes.errorReply++;
            const code = (errors[0]?.payload as { code: string }).code;
            codes.set(code, (codes.get(code) ?? 0) + 1);
          } else {
            // A random input that happened to be a valid request: an ordinary reply.
            assert.ok(rest.every((f) => f.type === FrameType.response), JSON.stringify(rest));
            outcomes.validReply++;
          }
        } finally {
          ch.destroy();
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    stop = true;
    await goodLoop;
    assert.equal(outcomes.errorReply + outcomes.validReply, 10_000);
    assert.ok(outcomes.errorReply > 9000, JSON.stringify(outcomes));
    assert.ok(goodOps > 10, `the good client made only ${goodOps} lookups`);
    // The daemon is fine and the good client's name is intact.
    assert.equal((await good.lookup('fuzz/good')).owner.client, 'good');
    const stats = ts.server.stats();
    assert.ok(stats.protocolErrors >= outcomes.errorReply - stats.errors, JSON.stringify(stats));
    console.log(`# outcomes ${JSON.stringify(outcomes)} codes ${JSON.stringify(Object.fromEntries(codes))} good lookups ${goodOps}`);
  } finally {
    await good.close();
    await ts.close();
  }
});
