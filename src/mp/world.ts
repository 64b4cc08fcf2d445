/** The rank's world communicator, once init() has built it (one per thread or process). */
import type { Communicator } from './communicator.js';

let current: Communicator | undefined;
let pending: Promise<Communicator> | undefined;

export function getWorld(): Communicator | undefined {
  return current;
}

export function worldOnce(make: () => Promise<Communicator>): Promise<Communicator> {
  if (current !== undefined) return Promise.resolve(current);
  pending ??= make().then(
    (c) => {
      current = c;
      return c;
    },
    (err: unknown) => {
      pending = undefined;
      throw err;
    },
  );
  return pending;
}
