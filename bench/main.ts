/**
 * `npm run bench`: runs every section in bench/sections (or those named in
 * BENCH_ONLY=a,b), prints one table of ratios to each group's baseline, and
 * writes it to .bench-results/table.md. BENCH_QUICK=1 for a short run.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import os from 'node:os';
import { createContext, renderTable, type BenchRow, type BenchSection } from './harness.js';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.env['BENCH_QUICK'] === '1' || process.argv.includes('--quick');
const only = (process.env['BENCH_ONLY'] ?? '').split(',').filter(Boolean);

const files = readdirSync(join(here, 'sections'))
  .filter((f) => /\.(js|ts)$/.test(f) && !f.endsWith('.d.ts') && !f.endsWith('.map'))
  .sort();
const sections: BenchSection[] = [];
for (const f of files) {
  const mod = (await import(pathToFileURL(join(here, 'sections', f)).href)) as { section?: BenchSection };
  if (mod.section && (only.length === 0 || only.includes(mod.section.name))) sections.push(mod.section);
}

const ctx = createContext(quick);
const rows: BenchRow[] = [];
const started = new Date();
for (const [i, s] of sections.entries()) {
  process.stderr.write(`[${i + 1}/${sections.length}] ${s.name}\n`);
  try {
    rows.push(...(await s.run(ctx)));
  } catch (err) {
    process.stderr.write(`  section ${s.name} failed: ${(err as Error).stack ?? String(err)}\n`);
    rows.push({ group: s.name, name: `FAILED: ${(err as Error).message}`, value: NaN, unit: 'us/op' });
  }
}
const header = [
  `Switchboard benchmark, ${started.toISOString()}${quick ? ' (quick)' : ''}`,
  `Node ${process.version}, ${os.platform()} ${os.release()}, ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, load ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
  'Latency rows: median microseconds per round trip; ratio = path / baseline (lower is better).',
  'Throughput rows: messages (or bytes) per second; ratio = path / baseline (higher is better).',
  '',
].join('\n');
const table = header + renderTable(rows) + '\n';
process.stdout.write(table);
mkdirSync('.bench-results', { recursive: true });
writeFileSync(join('.bench-results', 'table.md'), table);
