/**
 * Where the ranks of a job publish and find each other's contact addresses
 * (seed 12.1: processes that do not know each other meet through names).
 * The name service is the real one: each rank registers `mp/<job>/<rank>`
 * and the others wait for it. A directory of files is the fallback for a
 * build or host without a name server (every rank must share the
 * filesystem: one host, or network namespaces of one host).
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TimeoutError } from '../errors.js';
import type { NameClient } from '../naming/index.js';

export interface Directory {
  readonly description: string;
  register(name: string, address: string): Promise<void>;
  /** The address registered under `name`, waiting for it up to timeoutMs. */
  waitFor(name: string, timeoutMs: number): Promise<string>;
  unregister(name: string): Promise<void>;
  close(): Promise<void>;
}

export function rankName(job: string, rank: number): string {
  return `mp/${job}/${rank}`;
}

export class NameServiceDirectory implements Directory {
  readonly description: string;
  private readonly client: NameClient;
  private readonly tokens = new Map<string, string>();

  private constructor(client: NameClient, address: string) {
    this.client = client;
    this.description = `name service at ${address}`;
  }

  /** Connect to the name server at `address` (a comma-separated list is tried in order). */
  static async connect(address: string, clientName = 'switchboard-mp'): Promise<NameServiceDirectory> {
    const { NameClient } = await import('../naming/index.js');
    return new NameServiceDirectory(await NameClient.connect({ address, clientName, reconnect: false }), address);
  }

  async register(name: string, address: string): Promise<void> {
    const { token } = await this.client.register(name, { address, protocol: 'mp' });
    this.tokens.set(name, token);
  }

  async waitFor(name: string, timeoutMs: number): Promise<string> {
    return (await this.client.waitFor(name, { timeoutMs })).contact.address;
  }

  async unregister(name: string): Promise<void> {
    const t = this.tokens.get(name);
    if (t === undefined) return;
    this.tokens.delete(name);
    await this.client.unregister(name, t);
  }

  async close(): Promise<void> {
    for (const name of [...this.tokens.keys()]) await this.unregister(name).catch(() => undefined);
    await this.client.close();
  }
}

export class FileDirectory implements Directory {
  readonly description: string;
  private readonly dir: string;
  private readonly mine = new Set<string>();

  constructor(dir: string) {
    this.dir = dir;
    this.description = `directory ${dir}`;
  }

  private path(name: string): string {
    return join(this.dir, encodeURIComponent(name));
  }

  async register(name: string, address: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path(name)}.${process.pid}.tmp`;
    await writeFile(tmp, address, { mode: 0o600 });
    await rename(tmp, this.path(name));
    this.mine.add(name);
  }

  async waitFor(name: string, timeoutMs: number): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
      try {
        return await readFile(this.path(name), 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      if (Date.now() >= end) throw new TimeoutError(`"${name}" was not registered within ${timeoutMs} ms (${this.description})`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  async unregister(name: string): Promise<void> {
    this.mine.delete(name);
    await rm(this.path(name), { force: true });
  }

  async close(): Promise<void> {
    for (const name of [...this.mine]) await this.unregister(name);
  }
}
