/** Running the switchboard CLI from a test: compiled (dist) or from source through tsx. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

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
