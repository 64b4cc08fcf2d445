/** Fixtures shared by the daemon tests: run the switchboard CLI as a child process, make fake users. */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** How to run the CLI from this test: main.ts through tsx (source run) or main.js (compiled run). */
export function cliCommand(): { command: string; args: string[] } {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  const main = fileURLToPath(new URL(`../../src/cli/main.${ext}`, import.meta.url));
  return { command: process.execPath, args: [...process.execArgv, main] };
}

export interface CliProcess {
  child: ChildProcess;
  pid: number;
  /** Everything written to stderr so far. */
  stderr(): string;
  stdout(): string;
  /** Wait for a stderr line matching `re` (rejects after timeoutMs or on exit). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after 5 s; resolves with the exit status. */
  stop(): Promise<number | string>;
}

export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; prefix?: string[] } = {}): CliProcess {
  const { command, args: base } = cliCommand();
  const argv = [...(options.prefix ?? []), command, ...base, ...args];
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
  let err = '';
  let out = '';
  const listeners = new Set<() => void>();
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString('utf8');
    for (const l of listeners) l();
  });
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString('utf8');
  });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const proc: CliProcess = {
    child,
    pid: child.pid as number,
    stderr: () => err,
    stdout: () => out,
    exited,
    waitFor(re, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const m = re.exec(err);
          if (m) {
            cleanup();
            resolve(m);
            return true;
          }
          return false;
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${re} in stderr:\n${err}`));
        }, timeoutMs);
        const onExit = (): void => {
          if (!check()) {
            cleanup();
            reject(new Error(`process exited before ${re}; stderr:\n${err}`));
          }
        };
        const cleanup = (): void => {
          clearTimeout(timer);
          listeners.delete(l);
          child.removeListener('exit', onExit);
        };
        const l = (): void => void check();
        if (check()) return;
        listeners.add(l);
        child.once('exit', onExit);
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
  return proc;
}

/** Run the CLI to completion. */
export async function runCliToEnd(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const p = runCli(args, options);
  const t = setTimeout(() => p.child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
  const code = await p.exited;
  clearTimeout(t);
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

export interface FakeUser {
  login: string;
  meta?: Record<string, unknown>;
  files?: Record<string, string>;
}

/** A --users-dir tree: DIR/<login>/.finger.json and home files, world-readable like a shared home. */
export function makeUsersDir(dir: string, users: readonly FakeUser[]): string {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  for (const u of users) {
    const home = join(dir, u.login);
    mkdirSync(home, { recursive: true });
    chmodSync(home, 0o755);
    if (u.meta) writeFileSync(join(home, '.finger.json'), JSON.stringify(u.meta));
    for (const [name, text] of Object.entries(u.files ?? {})) {
      writeFileSync(join(home, name), text);
      chmodSync(join(home, name), 0o644);
    }
  }
  return dir;
}
