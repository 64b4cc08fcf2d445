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
import { PEER_LOST_EXIT, PeerLostError } from './errors.js';


const app = process.argv[2];
if (app === undefined) {
  process.stderr.write('usage: process-entry APP [ARGS...]\n');
  process.exit(2);
}
// The app sees argv as if it had been started directly: [node, app, ...args].
process.argv.splice(1, 1);
const rank = process.env['SWITCHBOARD_MP_RANK'] ?? '?';
try {
  await import(/^[a-z]+:/.test(app) ? app : pathToFileURL(resolve(app)).href);
  await getWorld()?.close();
} catch (err) {
  process.stderr.write(`rank ${rank}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(err instanceof PeerLostError ? PEER_LOST_EXIT : 1);
}
