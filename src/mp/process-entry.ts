/**
 * The start file of a rank process under `switchboard run`: runs the app
 * module (whose code calls init()), finalizes the world communicator when the
 * module's top-level code is done, and exits with PEER_LOST_EXIT when the rank
 * failed only because another rank was lost, so the launcher can name the
 * rank that failed first.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { getWorld } from './world.js';
import { LAUNCHER_GONE_EXIT, PEER_LOST_EXIT, PeerLostError } from './errors.js';


const app = process.argv[2];
if (app === undefined) {
  process.stderr.write('usage: process-entry APP [ARGS...]\n');
  process.exit(2);
}
// The app sees argv as if it had been started directly: [node, app, ...args].
process.argv.splice(1, 1);
const rank = process.env['SWITCHBOARD_MP_RANK'] ?? '?';
if (process.env['SWITCHBOARD_MP_LIFELINE'] === '1') watchLauncher();
try {
  await import(/^[a-z]+:/.test(app) ? app : pathToFileURL(resolve(app)).href);
  await getWorld()?.close();
} catch (err) {
  process.stderr.write(`rank ${rank}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(err instanceof PeerLostError ? PEER_LOST_EXIT : 1);
}

/**
 * Under `switchboard run` stdin is a pipe from the launcher that it never
 * writes: its end means the launcher is gone (killed, even by SIGKILL), and
 * a rank left alone would wait for its peers forever. The pipe does not keep
 * the rank alive.
 */
function watchLauncher(): void {
  const stdin = process.stdin as NodeJS.ReadStream & { unref?: () => void };
  const gone = (): void => {
    process.stderr.write(`rank ${rank}: the launcher is gone (its pipe to this rank closed); stopping\n`);
    process.exit(LAUNCHER_GONE_EXIT);
  };
  stdin.once('end', gone);
  stdin.once('error', gone);
  stdin.on('data', () => undefined);
  stdin.unref?.();
}
