/** `switchboard run -n N [--threads] [--hosts h1,h2] app.js [-- args]`: start a message-passing job, like mpirun. */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { SwitchboardError } from '../../errors.js';

function count(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function progressOf(v: string): 'poll' | 'yield' | 'auto' {
  if (v === 'poll' || v === 'yield' || v === 'auto') return v;
  throw new InvalidArgumentError(`--progress must be poll, yield or auto, got "${v}"`);
}

function transportOf(v: string): 'shm' | 'unix' | 'tcp' {
  if (v === 'shm' || v === 'unix' || v === 'tcp') return v;
  throw new InvalidArgumentError(`--transport must be shm, unix or tcp, got "${v}"`);
}

export function register(program: Command): void {
  program
    .command('run')
    .description('start N ranks of a message-passing program (switchboard/mp), like mpirun -np N; exits non-zero naming a rank that died')
    .argument('<app>', 'the program: a JavaScript module that calls init() from switchboard/mp')
    .argument('[args...]', 'arguments for the program (put "--" before any that start with a dash)')
    .requiredOption('-n, --np <count>', 'number of ranks', count)
    .option('--threads', 'run the ranks as worker threads of one process')
    .option('--hosts <list>', 'comma-separated hosts for the ranks, round-robin: network namespace names (ip netns), localhost, or ssh hosts (key login, same paths: ranks start in this directory)')
    .option('--transport <kind>', 'how ranks on one host connect: shm (shared-memory rings; the default when ranks poll), unix (the default when they yield) or tcp (loopback)', transportOf)
    .option('--progress <mode>', 'how a waiting receive waits: poll (spin briefly first, lowest latency), yield (sleep at once), or auto (default: poll unless ranks outnumber cores)', progressOf)
    .option('--ns <address>', 'name server address (default: $SWITCHBOARD_NAMESERVER or the well-known one if it answers, else a private one)')
    .option('--timeout <ms>', 'default timeout of every blocking operation in the ranks', count)
    .option('--grace <ms>', 'after a rank dies, stop the ranks still running after this long', count, 5000)
    .option('--tag-output', 'prefix every output line with [rank]')
    .action(async (app: string, args: string[], opts: { np: number; threads?: boolean; transport?: 'shm' | 'unix' | 'tcp'; progress?: 'poll' | 'yield' | 'auto'; hosts?: string; ns?: string; timeout?: number; grace: number; tagOutput?: boolean }) => {
      // On this machine a missing program is said once, not as every rank's stack trace
      // (on other hosts the path is theirs to resolve).
      if (opts.hosts === undefined && !/^[a-z]+:/.test(app) && !existsSync(resolve(app))) {
        throw new SwitchboardError('ENOENT', `${app}: no such file (the program every rank runs)`);
      }
      const { launch } = await import('../../mp/launch.js');
      const r = await launch({
        n: opts.np,
        app,
        args,
        threads: opts.threads,
        transport: opts.transport,
        progress: opts.progress,
        hosts: opts.hosts?.split(',').map((h) => h.trim()).filter(Boolean),
        nameServer: opts.ns,
        timeoutMs: opts.timeout,
        graceMs: opts.grace,
        tagOutput: opts.tagOutput,
      });
      if (r.code !== 0) process.exitCode = r.code;
    });
}
