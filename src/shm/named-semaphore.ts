/**
 * Named POSIX semaphores (sem_open), shared by name with any process,
 * including C programs: `switchboard` name `foo` is the POSIX name `/sb.foo`
 * (a name starting with `/` is used as is).
 */
import { AbortError, ArgumentError, SwitchboardError, TimeoutError } from '../errors.js';
import { addon, shmError, sys } from './native.js';
import { posixName } from './names.js';

export interface NamedSemaphoreOptions {
  /** Create if missing (default false). */
  create?: boolean | undefined;
  /** With create: fail with EEXIST if it exists (default false). */
  exclusive?: boolean | undefined;
  mode?: number | undefined;
  /** Initial value when created (default 0). */
  value?: number | undefined;
}

export class NamedSemaphore {
  readonly name: string;
  readonly path: string;
  #handle: number;

  private constructor(name: string, path: string, handle: number) {
    this.name = name;
    this.path = path;
    this.#handle = handle;
  }

  static open(name: string, options: NamedSemaphoreOptions = {}): NamedSemaphore {
    const path = posixName(name);
    const value = options.value ?? 0;
    if (!Number.isInteger(value) || value < 0) throw new ArgumentError('semaphore value must be a non-negative integer');
    const create = options.create ? (options.exclusive ? 2 : 1) : 0;
    try {
      return new NamedSemaphore(name, path, addon().semOpen(path, create, options.mode ?? 0o600, value));
    } catch (err) {
      const e = shmError(err, `sem_open ${path}`);
      if (e.code === 'ENOENT') throw new SwitchboardError('ENOENT', `no semaphore "${name}" (${path})`, { cause: err });
      if (e.code === 'EEXIST') throw new SwitchboardError('EEXIST', `semaphore "${name}" (${path}) already exists`, { cause: err });
      throw e;
    }
  }

  /** Remove the name; true if it existed. */
  static unlink(name: string): boolean {
    const path = posixName(name);
    try {
      addon().semUnlink(path);
      return true;
    } catch (err) {
      const e = shmError(err, `sem_unlink ${path}`);
      if (e.code === 'ENOENT') return false;
      throw e;
    }
  }

  get value(): number {
    return sys('sem_getvalue', () => addon().semGetValue(this.#h()));
  }

  post(): void {
    sys('sem_post', () => addon().semPost(this.#h()));
  }

  tryWait(): boolean {
    return sys('sem_trywait', () => addon().semTryWait(this.#h()));
  }

  /** Block this thread; TimeoutError after timeoutMs. */
  wait(timeoutMs?: number): void {
    const r = sys('sem_wait', () => addon().semWait(this.#h(), timeoutMs ?? -1));
    if (r === 'timed-out') throw new TimeoutError(`timed out waiting for semaphore ${this.name}`);
  }

  /** wait() without blocking the event loop. */
  waitAsync(options: { timeoutMs?: number | undefined; signal?: AbortSignal | undefined; ref?: boolean | undefined } = {}): Promise<void> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(new AbortError());
    const h = this.#h();
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        addon().cancelWait(id);
        reject(new AbortError());
      };
      const id = sys('sem_wait', () =>
        addon().semWaitAsync(h, options.timeoutMs ?? -1, options.ref ?? true, (r) => {
          signal?.removeEventListener('abort', onAbort);
          if (r === 'ok') resolve();
          else if (r === 'timed-out') reject(new TimeoutError(`timed out waiting for semaphore ${this.name}`));
          else if (typeof r === 'number') reject(new SwitchboardError('EIO', `sem_wait failed (errno ${-r})`));
        }),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  unlink(): boolean {
    return NamedSemaphore.unlink(this.name);
  }

  /** sem_close (deferred until pending async waits end). Idempotent. */
  close(): void {
    if (this.#handle === 0) return;
    addon().semClose(this.#handle);
    this.#handle = 0;
  }

  #h(): number {
    if (this.#handle === 0) throw new SwitchboardError('ECLOSED', `semaphore ${this.name} is closed`);
    return this.#handle;
  }
}
