/**
 * A streaming log tail: the server's method is an async generator that
 * yields lines as a file grows; the client reads them with `for await`.
 * Flow control is credit-based: a slow reader holds the server back instead
 * of filling memory, and leaving the loop cancels the generator over there.
 *
 *   npx tsx examples/rpc/log-tail.ts
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { callContext, close, connect, expose } from '../../src/rpc/index.js';

export interface LogService {
  /** Lines of `path`, the existing ones and then new ones as they are written, until cancelled. */
  tail(path: string, options: { fromStart: boolean; pollMs: number }): AsyncGenerator<string>;
}

const service: LogService = {
  async *tail(path, { fromStart, pollMs }) {
    const { signal } = callContext();
    const file = await open(path, 'r');
    try {
      let pos = fromStart ? 0 : (await file.stat()).size;
      let rest = '';
      const buf = Buffer.alloc(64 * 1024);
      while (!signal.aborted) {
        const { bytesRead } = await file.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) {
          await new Promise((r) => setTimeout(r, pollMs));
          continue;
        }
        pos += bytesRead;
        const lines = (rest + buf.toString('utf8', 0, bytesRead)).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) yield line; // waits here while the client has no credit left
      }
    } finally {
      await file.close();
    }
  },
};

if (process.argv[2] === 'serve') {
  await expose(service, { on: process.argv[3] as string });
  process.stdout.write('ready\n');
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = mkdtempSync(join(tmpdir(), 'sb-tail-'));
  const log = join(dir, 'app.log');
  writeFileSync(log, 'started\n');
  const address = `unix://${join(dir, 'tail.sock')}`;
  const server = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), 'serve', address], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    await new Promise((r) => server.stdout?.once('data', r));
    const logs = await connect<LogService>(address);
    let n = 0;
    const writer = setInterval(() => appendFileSync(log, `event ${++n} at ${new Date().toISOString()}\n`), 20);
    let seen = 0;
    for await (const line of await logs.tail(log, { fromStart: true, pollMs: 10 })) {
      console.log('tail:', line);
      if (++seen === 6) break; // cancels the generator in the server
    }
    clearInterval(writer);
    await close(logs);
  } finally {
    server.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
