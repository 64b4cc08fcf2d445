/** Running the switchboard CLI from a test: compiled (dist) or from source through tsx. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isAlive } from '../../src/shm/index.js';

const here = import.meta.url;
const ext = here.endsWith('.ts') ? 'ts' : 'js';

export const CLI = fileURLToPath(new URL(`../../src/cli/main.${ext}`, here));
export const APP = fileURLToPath(new URL(`./fixtures/app.${ext}`, here));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `switchboard ...args` (optionally under a prefix command like `ip netns exec h`), with a hard deadline. */
export function runCli(args: string[], options: { prefix?: string[]; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  const argv = [...(options.prefix ?? []), process.execPath, ...process.execArgv, CLI, ...args];
  if (!existsSync(CLI)) throw new Error(`no CLI at ${CLI}`);
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Start `switchboard run ...args APP hang`, wait until every rank printed its
 * pid, kill the launcher with SIGKILL (no chance to clean up), and return how
 * long until every rank process was gone (Infinity if some outlived `withinMs`,
 * after which the test's cleanup kills them).
 */
export async function killLauncherOfHangingRanks(args: string[], n: number, options: { env?: NodeJS.ProcessEnv; withinMs?: number } = {}): Promise<{ pids: number[]; goneMs: number }> {
  const child = spawn(process.execPath, [...process.execArgv, CLI, ...args, APP, 'hang'], { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const pids = await new Promise<number[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ranks not ready in time: ${out} ${err}`)), 60_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const found = [...out.matchAll(/rank \d+ pid (\d+) ready/g)].map((m) => Number(m[1]));
      if (found.length === n) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    child.once('exit', () => reject(new Error(`the launcher ended first: ${err}`)));
  });
  const t0 = Date.now();
  child.kill('SIGKILL');
  const limit = options.withinMs ?? 10_000;
  while (pids.some(isAlive) && Date.now() - t0 < limit) await new Promise((r) => setTimeout(r, 50));
  const goneMs = pids.some(isAlive) ? Infinity : Date.now() - t0;
  for (const p of pids.filter(isAlive)) process.kill(p, 'SIGKILL');
  return { pids, goneMs };
}