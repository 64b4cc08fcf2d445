/**
 * Whole-package checks: no import cycles between modules (grpc-js runs madge
 * for the same reason), and every subpath export resolves to a module.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// works from source (test/repo) and compiled (dist/test/repo)
const root = [resolve(here, '../..'), resolve(here, '../../..')].find((d) => existsSync(join(d, 'package.json')))!;
const srcDir = join(root, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return sources(p);
    return n.endsWith('.ts') && !n.endsWith('.d.ts') ? [p] : [];
  });
}

test('there are no import cycles among the modules in src/', () => {
  const files = sources(srcDir);
  const graph = new Map<string, string[]>();
  // value imports only: `import type` and `export type` vanish at run time
  const re = /^\s*(?:import|export)\s+(?!type\b)(?:[^'"]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]/gm;
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    const deps: string[] = [];
    for (const m of text.matchAll(re)) {
      const target = resolve(dirname(f), m[1]!.replace(/\.js$/, '.ts'));
      if (existsSync(target)) deps.push(target);
    }
    graph.set(f, deps);
  }
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (f: string, path: string[]): void => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push([...path.slice(path.indexOf(f)), f].map((p) => p.slice(srcDir.length + 1)).join(' -> '));
      return;
    }
    state.set(f, 'open');
    for (const d of graph.get(f) ?? []) visit(d, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of files) visit(f, []);
  assert.deepEqual(cycles, []);
});

test('every subpath export of package.json points at a built module', async () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, { default: string }> };
  for (const [sub, target] of Object.entries(pkg.exports)) {
    const file = join(root, target.default);
    assert.ok(existsSync(file), `${sub} -> ${target.default} is missing (run npm run build)`);
    const mod = (await import(file)) as Record<string, unknown>;
    assert.ok(Object.keys(mod).length > 0, `${sub} exports nothing`);
  }
});
