#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's test
// runner. TEST_ONLY=transport,wire limits the run to those folders.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = 'dist/test';
const only = (process.env.TEST_ONLY ?? '').split(',').filter(Boolean);
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js')) files.push(p);
  }
})(root);
const chosen = only.length ? files.filter((f) => only.some((o) => f.startsWith(join(root, o)))) : files;
if (chosen.length === 0) {
  console.error('no test files found under dist/test');
  process.exit(1);
}
const args = ['--test', '--test-concurrency=2', '--test-timeout=180000', ...chosen];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
