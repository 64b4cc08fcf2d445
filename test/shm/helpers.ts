/** Spawning fixture children for the shm tests, and unique names. */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';
import assert from 'node:assert/strict';
import { unlinkRegionName } from '../../src/shm/index.js';
import { SwitchboardError } from '../../src/errors.js';

const here = fileURLToPath(import.meta.url);
const ext = here.endsWith('.ts') ? '.ts' : '.js';
export const CHILD = fileURLToPath(new URL(`./fixtures/child${ext}`, import.meta.url));

export function execArgv(): string[] {
  return process.execArgv.filter((a) => !a.startsWith('--test'));
}

let n = 0;
/** A name nobody else uses; removed by cleanup(). */
export function uniqueName(tag: string): string {
  return `test-${tag}-${process.pid}-${n++}`;
}

export interface Kid {
  proc: ChildProcess;
  /** Next JSON event from the child's stdout (rejects if it exits first). */
  next(): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

export function spawnChild(args: string[], stdio: StdioOptions = ['ignore', 'pipe', 'inherit']): Kid {
  const proc = spawn(process.execPath, [...execArgv(), CHILD, ...args], { stdio });
  const queue: Record<string, unknown>[] = [];
  const waiters: ((v: Record<string, unknown> | Error) => void)[] = [];
  let done = false;
  const rl = createInterface({ input: proc.stdout! });
  rl.on('line', (line) => {
    let ev: Record<string, unknown>;
    try {
      ev = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const w = waiters.shift();
    if (w) w(ev);
    else queue.push(ev);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    // 'close' comes after both the exit and the last stdout line.
    proc.on('close', (code, signal) => {
      done = true;
      for (const w of waiters.splice(0)) w(new Error(`child exited (${code ?? signal}) before the next event`));
      resolve({ code, signal });
    });
  });
  return {
    proc,
    exited,
    next() {
      const ev = queue.shift();
      if (ev) return Promise.resolve(ev);
      if (done) return Promise.reject(new Error('child has exited'));
      return new Promise((resolve, reject) => {
        waiters.push((v) => (v instanceof Error ? reject(v) : resolve(v)));
      });
    },
    kill(signal = 'SIGKILL') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    },
  };
}

export function cleanup(...names: string[]): void {
  for (const name of names) unlinkRegionName(name);
}

/** Start test/shm/fixtures/worker with `data`; from sources, tsx is registered in the worker first. */
export function startWorker(data: Record<string, unknown>): Worker {
  const file = fileURLToPath(new URL(`./fixtures/worker${ext}`, import.meta.url));
  if (ext === '.js') return new Worker(file, { workerData: data });
  const api = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(file)}); })`;
  return new Worker(boot, { eval: true, workerData: data });
}

export function workerExit(w: Worker): Promise<number> {
  return new Promise((resolve, reject) => {
    w.on('error', reject);
    w.on('exit', resolve);
  });
}

/**
 * Corrupt a live ring (header words 16 = tail and 32 = head, 2 and 0, or
 * anywhere in the data area), then read up to 20 times with `readOne`
 * (false: nothing more): anything thrown must be a SwitchboardError.
 */
export function corruptAndDrain(sab: SharedArrayBuffer, pokes: readonly (readonly [number, number])[], readOne: () => boolean): void {
  const words = new Int32Array(sab);
  for (const [at, value] of pokes) {
    const idx = at < 64 ? ([16, 32, 2, 0][at % 4] as number) : 64 + (at - 64);
    words[idx] = value;
  }
  for (let i = 0; i < 20; i++) {
    try {
      if (!readOne()) break;
    } catch (err) {
      assert.ok(err instanceof SwitchboardError, `not typed: ${String(err)}`);
      break;
    }
  }
}
