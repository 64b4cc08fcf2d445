/** Shared by the ONC RPC tests of the polled paths. */
import { spawn, type ChildProcess } from 'node:child_process';

/** `n` bytes of a pattern that depends on `seed`. */
export const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

/** Did `p` settle before an event-loop turn (a setImmediate queued now) could run? */
export async function settledWithoutLoopTurn<T>(p: Promise<T>): Promise<{ turn: boolean; value?: T; error?: unknown }> {
  let turn = false;
  const imm = setImmediate(() => (turn = true));
  try {
    const value = await p;
    return { turn, value };
  } catch (error) {
    return { turn, error };
  } finally {
    clearImmediate(imm);
  }
}

/** The URL of src/oncrpc/index, as a child process imports it (.ts under tsx, .js when compiled). */
export const oncrpcUrl = new URL(`../../src/oncrpc/index${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;

/**
 * Run `script` (an ES module, with ONCRPC_URL in its environment) in a child
 * Node process with `args`; it prints `READY <port>` when it serves. The
 * child and that port (rejects if the child exits first).
 */
export async function startReadyChild(script: string, args: string[] = []): Promise<{ child: ChildProcess; port: number }> {
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--test') && a !== '--input-type=module');
  const child = spawn(process.execPath, [...execArgv, '--input-type=module', '-e', script, '--', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ONCRPC_URL: oncrpcUrl },
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`child process exited with ${code} before it was ready`)));
  });
  return { child, port };
}
