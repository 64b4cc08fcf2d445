/**
 * The benchmark harness: every section measures its paths beside the baseline
 * they build on, in the same run, and returns rows; main.ts prints one table
 * with the ratio of each row to its baseline.
 */
import { performance } from 'node:perf_hooks';

export type Unit = 'us/op' | 'msg/s' | 'MB/s' | 'GB/s' | 'ops/s';

export interface BenchRow {
  /** Rows of one group are compared with each other, e.g. "stream round trip, unix, 64 B". */
  group: string;
  /** What was measured, e.g. "switchboard Channel" or "raw net (baseline)". */
  name: string;
  value: number;
  unit: Unit;
  /** True for the row the others in its group are divided by. */
  baseline?: boolean;
  /** The target for the ratio, printed beside it, e.g. "<= 1.10". */
  target?: string;
  note?: string;
  /**
   * The ratio to the baseline when the two were measured in turn, block by
   * block (each block over the baseline's block run just before it): their
   * median, printed instead of value over the baseline's value, which
   * placement changes between blocks would skew.
   */
  ratio?: number;
}

export interface BenchContext {
  /** BENCH_QUICK=1 (or --quick): shorter runs, for a smoke test. */
  readonly quick: boolean;
  /** One line of progress on stderr. */
  progress(message: string): void;
  /**
   * Median microseconds per operation of `op` (awaited sequentially), over
   * `rounds` rounds of about `targetMs` each after a warm-up.
   */
  latency(op: () => Promise<void> | void, options?: { rounds?: number; targetMs?: number; warmupMs?: number }): Promise<number>;
  /**
   * Messages per second: `run(n)` must send n messages and resolve when the
   * receiver has them all. Median over rounds.
   */
  throughput(run: (n: number) => Promise<void>, options?: { rounds?: number; targetMs?: number }): Promise<number>;
  /**
   * Like latency(), for several ops at once with their rounds interleaved
   * (a, b, a, b, ...), so a slow spell of a shared machine hits every op alike.
   * Returns the median us/op of each, in the order given.
   */
  latencies(ops: readonly (() => Promise<void> | void)[], options?: { rounds?: number; targetMs?: number; warmupMs?: number }): Promise<number[]>;
}

export interface BenchSection {
  /** Short name, selectable with BENCH_ONLY=name1,name2. */
  name: string;
  run(ctx: BenchContext): Promise<BenchRow[]>;
}

/** The median of `xs` (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function createContext(quick: boolean): BenchContext {
  const scale = quick ? 0.25 : 1;
  return {
    quick,
    progress(message) {
      process.stderr.write(`  .. ${message}\n`);
    },
    async latency(op, options = {}) {
      const rounds = options.rounds ?? (quick ? 3 : 7);
      const targetMs = (options.targetMs ?? 200) * scale;
      const warmupMs = (options.warmupMs ?? 300) * scale;
      let n = 0;
      const w0 = performance.now();
      while (performance.now() - w0 < warmupMs || n < 10) {
        await op();
        n++;
      }
      const per = (performance.now() - w0) / n;
      const iters = Math.max(5, Math.round(targetMs / Math.max(per, 1e-4)));
      const results: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const t0 = performance.now();
        for (let i = 0; i < iters; i++) await op();
        results.push(((performance.now() - t0) * 1000) / iters);
      }
      return median(results);
    },
    async latencies(ops, options = {}) {
      const rounds = options.rounds ?? (quick ? 5 : 11);
      const targetMs = (options.targetMs ?? 100) * scale;
      const warmupMs = (options.warmupMs ?? 300) * scale;
      const iters: number[] = [];
      for (const op of ops) {
        let n = 0;
        const w0 = performance.now();
        while (performance.now() - w0 < warmupMs || n < 10) {
          await op();
          n++;
        }
        iters.push(Math.max(5, Math.round(targetMs / Math.max((performance.now() - w0) / n, 1e-4))));
      }
      const results: number[][] = ops.map(() => []);
      for (let r = 0; r < rounds; r++) {
        for (const [i, op] of ops.entries()) {
          const k = iters[i] as number;
          const t0 = performance.now();
          for (let j = 0; j < k; j++) await op();
          (results[i] as number[]).push(((performance.now() - t0) * 1000) / k);
        }
      }
      return results.map(median);
    },
    async throughput(run, options = {}) {
      const rounds = options.rounds ?? (quick ? 3 : 5);
      const targetMs = (options.targetMs ?? 300) * scale;
      let n = 1000;
      for (;;) {
        const t0 = performance.now();
        await run(n);
        const dt = performance.now() - t0;
        if (dt > targetMs / 4 || n >= 10_000_000) {
          n = Math.max(1000, Math.round((n * targetMs) / Math.max(dt, 1)));
          break;
        }
        n *= 4;
      }
      const results: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const t0 = performance.now();
        await run(n);
        results.push(n / ((performance.now() - t0) / 1000));
      }
      return median(results);
    },
  };
}

export function formatValue(v: number): string {
  if (v >= 1_000_000) return `${(v / 1_000_000).toFixed(2)} M`;
  if (v >= 10_000) return Math.round(v).toLocaleString('en-US');
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** Ratio of a row to its group's baseline, oriented so that > 1 means slower/worse for latency. */
export function ratioOf(row: BenchRow, base: BenchRow | undefined): number | undefined {
  if (base === undefined || base === row) return undefined;
  if (row.ratio !== undefined) return row.ratio;
  return row.unit === 'us/op' ? row.value / base.value : row.value / base.value;
}

export function renderTable(rows: readonly BenchRow[]): string {
  const out = ['| group | path | value | unit | ratio to baseline | target |', '| --- | --- | ---: | --- | ---: | --- |'];
  const groups = new Map<string, BenchRow[]>();
  for (const r of rows) {
    const g = groups.get(r.group) ?? [];
    g.push(r);
    groups.set(r.group, g);
  }
  for (const [group, rs] of groups) {
    const base = rs.find((r) => r.baseline);
    for (const r of rs) {
      const ratio = ratioOf(r, base);
      const name = r.baseline ? `${r.name} (baseline)` : r.name;
      out.push(
        `| ${group} | ${name}${r.note ? ` — ${r.note}` : ''} | ${formatValue(r.value)} | ${r.unit} | ${ratio === undefined ? '' : `${ratio.toFixed(2)}x`} | ${r.target ?? ''} |`,
      );
    }
  }
  return out.join('\n');
}
