// Compile-time tests of Remote<T>: this file is type-checked by tsc (npm
// test builds it); each `@ts-expect-error` line must be an error, or the
// build fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { proxy, type ProxyMarked, type Remote, type RemoteIterable } from '../../src/rpc/index.js';

interface Account {
  id: string;
  balance: bigint;
  opened: Date;
  tags: Set<string>;
}

interface Bank {
  balance(acct: string): number;
  open(owner: { name: string; born: Date }): Promise<Account>;
  history(acct: string): AsyncGenerator<{ amount: number }>;
  onChange(cb: (acct: string, balance: number) => void): void;
  teller(): ProxyMarked<{ count(): number }>;
  attach(owner: { socket: net.Socket }): void;
  tagged(s: symbol): void;
  readonly name: string;
}

type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
const assertType = <T extends true>(): T => true as T;

declare const bank: Remote<Bank>;

function compileOnly(): void {
  // Every method returns a promise of what arrives.
  assertType<Equal<ReturnType<typeof bank.balance>, Promise<number>>>();
  const acct: Promise<Account> = bank.open({ name: 'x', born: new Date() });
  void acct;
  const history: Promise<RemoteIterable<{ amount: number }>> = bank.history('a');
  void history;
  // A callback crosses as a remote reference.
  void bank.onChange((a, b) => console.log(a, b));
  // A proxy()-marked result arrives as a stub whose methods return promises.
  void bank.teller().then(async (t) => {
    const n: number = await t.count();
    return n;
  });
  // Properties that are not methods are not on the stub.
  // @ts-expect-error name is not a method
  void bank.name;
  // @ts-expect-error wrong argument type
  void bank.balance(42);
  // @ts-expect-error a socket cannot cross (its type has symbol keys)
  void bank.attach({ socket: null as unknown as net.Socket });
  // @ts-expect-error a symbol cannot cross
  void bank.tagged(Symbol('s'));
  // @ts-expect-error results are promises, not values
  const wrong: number = bank.balance('a');
  void wrong;
}

test('Remote<T> maps an interface to promise-returning stubs (checked by tsc)', () => {
  assert.equal(typeof compileOnly, 'function');
  const marked = proxy({ a: 1 });
  assert.equal(marked.a, 1);
});
