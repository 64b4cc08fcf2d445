/** Start fixtures/daemon-main in a child process (source under tsx, or compiled). */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NameServerOptions } from '../../src/naming/index.js';

const here = dirname(fileURLToPath(import.meta.url));

export interface ChildDaemon {
  pid: number;
  addresses: string[];
  httpUrl: string | null;
  child: ChildProcess;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Node arguments that run `file` whether we run from source (tsx) or from dist. */
export function nodeArgsFor(file: string): string[] {
  const ts = join(here, `${file}.ts`);
  if (existsSync(ts) && import.meta.url.endsWith('.ts')) return ['--import', 'tsx', ts];
  return [join(here, `${file}.js`)];
}

export async function startChildDaemon(opts: NameServerOptions): Promise<ChildDaemon> {
  const child = spawn(process.execPath, [...nodeArgsFor('fixtures/daemon-main'), JSON.stringify(opts)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: process.cwd(),
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (err.length < 4000) err += d.toString();
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`daemon did not start: ${err}`)), 20_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited with ${code}: ${err}`));
    });
  });
  const info = JSON.parse(line) as { addresses: string[]; pid: number; httpUrl: string | null };
  return {
    pid: info.pid,
    addresses: info.addresses,
    httpUrl: info.httpUrl,
    child,
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(info.pid, signal);
        await exited;
      }
    },
  };
}
