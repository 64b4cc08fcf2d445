/**
 * `switchboard connect|listen|mkfifo`: the transport from the shell, like nc.
 * connect pipes stdin to a channel and the channel to stdout; listen accepts
 * connections and prints (or echoes) what arrives.
 */
import type { Command } from 'commander';

async function pump(ch: import('../../transport/index.js').Channel): Promise<void> {
  for await (const chunk of ch) {
    if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once('drain', r));
  }
}

export function register(program: Command): void {
  program
    .command('connect')
    .description('connect to an address and pipe stdin to it and it to stdout (tcp://h:p, unix:///path, udp://h:p, fifo:///path)')
    .argument('<address>', 'where to connect; a service name may stand for the port (tcp://localhost:finger)')
    .option('-t, --timeout <ms>', 'connect timeout in milliseconds', '10000')
    .action(async (address: string, opts: { timeout: string }) => {
      const { connect } = await import('../../transport/index.js');
      const ch = await connect(address, { timeoutMs: Number(opts.timeout) });
      process.stderr.write(`connected: ${ch.description}\n`);
      const reading = pump(ch).catch((err: Error) => process.stderr.write(`${err.message}\n`));
      for await (const chunk of process.stdin) await ch.write(chunk as Buffer);
      await ch.end();
      await reading;
      await ch.close();
    });

  program
    .command('listen')
    .description('listen on an address; print what each connection sends (or echo it back)')
    .argument('<address>', 'tcp://127.0.0.1:port or unix:///path (loopback unless a host is given)')
    .option('--echo', 'send every byte back to its sender')
    .option('--once', 'exit after the first connection ends')
    .option('--max-connections <n>', 'refuse connections beyond this many')
    .action(async (address: string, opts: { echo?: boolean; once?: boolean; maxConnections?: string }) => {
      const { listen, formatAddress } = await import('../../transport/index.js');
      const l = await listen(address, opts.maxConnections ? { maxConnections: Number(opts.maxConnections) } : {});
      process.stderr.write(`listening on ${formatAddress(l.address)}\n`);
      const stop = (): void => void l.close({ graceMs: 1000 }).then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      for await (const ch of l) {
        process.stderr.write(`connection: ${ch.description}${ch.peer.pid ? ` (pid ${ch.peer.pid})` : ''}\n`);
        const serving = (async () => {
          for await (const chunk of ch) {
            if (opts.echo) await ch.write(chunk);
            else process.stdout.write(chunk);
          }
          await ch.close();
        })().catch((err: Error) => process.stderr.write(`${err.message}\n`));
        if (opts.once) {
          await serving;
          await l.close();
          return;
        }
      }
    });

  program
    .command('mkfifo')
    .description('create a FIFO (named pipe) with mode 0600, or remove one with --rm')
    .argument('<path>', 'file system path')
    .option('--rm', 'remove the FIFO instead (refuses anything that is not a FIFO)')
    .option('-m, --mode <octal>', 'permissions', '600')
    .action(async (path: string, opts: { rm?: boolean; mode: string }) => {
      const { createFifo, removeFifo } = await import('../../transport/index.js');
      if (opts.rm) removeFifo(path);
      else createFifo(path, { mode: parseInt(opts.mode, 8) });
    });
}
