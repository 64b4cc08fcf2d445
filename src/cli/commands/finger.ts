/** `switchboard finger [-l] [user]@host[:port]`: the RFC 1288 client. */
import type { Command } from 'commander';
import { ArgumentError } from '../../errors.js';

export function register(program: Command): void {
  program
    .command('finger')
    .description('ask a finger server about a user, or who is logged in (RFC 1288); prints like the Debian finger client')
    .argument('[target]', '[user]@host[:port]; "user@h1@h2" asks h2 to forward to h1; default @localhost', '@localhost')
    .option('-l, --long', 'verbose answer (sends /W)')
    .option('-t, --timeout <ms>', 'give up after this long', '10000')
    .option('--max-bytes <n>', 'stop reading the answer after this many bytes', '1048576')
    .action(async (target: string, opts: { long?: boolean; timeout: string; maxBytes: string }) => {
      const timeoutMs = Number(opts.timeout);
      const maxBytes = Number(opts.maxBytes);
      if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new ArgumentError(`--timeout must be a positive number, got "${opts.timeout}"`);
      if (!Number.isInteger(maxBytes) || maxBytes <= 0) throw new ArgumentError(`--max-bytes must be a positive integer, got "${opts.maxBytes}"`);
      const { fingerQuery, parseFingerTarget, renderFingerOutput } = await import('../../daemons/finger-client.js');
      const t = parseFingerTarget(target);
      const raw = await fingerQuery({ host: t.host, port: t.port, query: t.query, verbose: opts.long, timeoutMs, maxBytes });
      process.stdout.write(renderFingerOutput(raw));
    });
}
