/**
 * Names of shared-memory objects. A plain name `foo` becomes the POSIX name
 * `/sb.foo` (so /dev/shm/sb.foo), which is how `switchboard shm ls` knows what
 * Switchboard created; a name starting with `/` is used as is, for sharing
 * with programs that chose their own name.
 */
import { ArgumentError } from '../errors.js';

export const NAME_PREFIX = 'sb.';

const PLAIN = /^[A-Za-z0-9._-]{1,200}$/;
const VERBATIM = /^\/[A-Za-z0-9._-]{1,250}$/;

/** The POSIX name (with its leading slash) for a region or semaphore name. */
export function posixName(name: string): string {
  if (typeof name !== 'string') throw new ArgumentError('a shared-memory name must be a string');
  if (VERBATIM.test(name)) return name;
  if (!PLAIN.test(name) || name === '.' || name === '..') {
    throw new ArgumentError(`bad shared-memory name "${name}": use 1-200 letters, digits, '.', '_' or '-' (or "/name" verbatim)`);
  }
  return `/${NAME_PREFIX}${name}`;
}
