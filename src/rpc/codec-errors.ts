import { ArgumentError } from '../errors.js';

/**
 * A value that cannot cross (a symbol, a class instance, a cycle...). The
 * message names where it sits, e.g. `args[1].owner.socket`.
 */
export class UnsendableError extends ArgumentError {
  override name = 'UnsendableError';
  /** Where the value sits, e.g. `args[1].owner.socket`. */
  path = '';
  /** @internal path segments, innermost last, added while the error unwinds */
  readonly segments: string[] = [];
  readonly reason: string;

  constructor(reason: string) {
    super(reason);
    this.reason = reason;
  }

  /** @internal */
  finish(root: string): this {
    this.path = root + this.segments.join('');
    this.message = `cannot send ${this.path}: ${this.reason}`;
    return this;
  }
}

export function keySegment(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

export function describe(value: unknown): string {
  if (typeof value === 'symbol') return `a symbol (${String(value.description ?? '')})`;
  if (typeof value === 'object' && value !== null) {
    const proto = Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null;
    const cls = proto?.constructor?.name;
    return cls ? `a ${cls} (class instance; mark it with proxy() to send a reference)` : 'an object with a foreign prototype';
  }
  return typeof value;
}
