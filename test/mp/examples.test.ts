/** The examples run and check themselves (each throws on a wrong answer). */
import { test } from 'node:test';
import { runThreads } from '../../src/mp/index.js';

const ex = (name: string): URL => new URL(`../../examples/mp/${name}.js`, import.meta.url);

test('parallel sum (scatter + reduce) on 3 threads', async () => {
  await runThreads(3, ex('parallel-sum'), { argv: ['30000'] });
});

test('heat diffusion with neighbour exchange on 3 threads matches the sequential field', async () => {
  await runThreads(3, ex('heat'), { argv: ['90', '300'] });
});

test('ping-pong on 2 threads', async () => {
  await runThreads(2, ex('pingpong'), { argv: ['20', '1'] });
});
