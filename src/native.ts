/**
 * Loads the project's native addons (built by `npm ci` through node-gyp into
 * build/Release). Internal: areas wrap what they need behind typed functions.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SwitchboardError } from './errors.js';

const require = createRequire(import.meta.url);

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'binding.gyp'))) return dir;
    dir = dirname(dir);
  }
  throw new SwitchboardError('EUNSUPPORTED', 'cannot find the Switchboard package root (binding.gyp)');
}

const cache = new Map<string, unknown>();

/** Load build/Release/<name>.node, with a clear error when it was not built. */
export function loadAddon<T>(name: string): T {
  const hit = cache.get(name);
  if (hit !== undefined) return hit as T;
  const path = join(packageRoot(), 'build', 'Release', `${name}.node`);
  try {
    const mod = require(path) as T;
    cache.set(name, mod);
    return mod;
  } catch (err) {
    throw new SwitchboardError(
      'EUNSUPPORTED',
      `native addon ${name} is not built (${path}); run "npm ci" or "npx node-gyp rebuild" with g++ and Node headers installed`,
      { cause: err },
    );
  }
}
