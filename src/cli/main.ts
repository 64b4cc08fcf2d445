#!/usr/bin/env node
/**
 * The `switchboard` command. Each subcommand lives in commands/<name>.ts and
 * exports `register(program)`; heavy modules are imported inside actions so
 * that `--help` stays fast. Usage errors exit 2, failures exit 1.
 */
import { Command, CommanderError } from 'commander';
import { SwitchboardError } from '../errors.js';
import { register as channel } from './commands/channel.js';
import { register as services } from './commands/services.js';
import { register as nameserver } from './commands/nameserver.js';
import { register as names } from './commands/names.js';
import { register as fingerd } from './commands/fingerd.js';
import { register as finger } from './commands/finger.js';
import { register as rpcgen } from './commands/rpcgen.js';
import { register as run } from './commands/run.js';
import { register as shm } from './commands/shm.js';

const program = new Command();
program
  .name('switchboard')
  .description('Inter-process communication toolkit: naming, streams, RPC, message passing, shared memory, daemons.')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

for (const register of [channel, services, nameserver, names, fingerd, finger, rpcgen, run, shm]) register(program);

// Output into a pipe whose reader has gone (`switchboard ... | head`) ends the command quietly, as it
// would a Unix filter, unless the command handles it itself (`run` drops its ranks' output and lets
// the job finish).
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (process.stdout.listenerCount('error') > 1) return;
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0);
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  if (err instanceof SwitchboardError) {
    process.stderr.write(`switchboard: ${err.message} [${err.code}]\n`);
    process.exit(1);
  }
  throw err;
}
