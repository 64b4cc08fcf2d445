/** `switchboard rpcgen file.x -o outdir`: compile an ONC RPC `.x` file to TypeScript. */
import type { Command } from 'commander';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function register(program: Command): void {
  program
    .command('rpcgen')
    .description('compile an RPC-language (.x) file to TypeScript: types, XDR codecs, a client class per program version and a server interface')
    .argument('<file.x>', 'the RPC-language source')
    .option('-o, --out-dir <dir>', 'where to write <name>.ts', '.')
    .option('--runtime <module>', 'module the generated code imports from', 'switchboard/oncrpc')
    .option('-D, --define <NAME[=VALUE]>', 'define a preprocessor macro (repeatable)', collect, [])
    .option('-I, --include <dir>', 'search this folder for #include files (repeatable)', collect, [])
    .option('--cpp', 'run the system C preprocessor (cpp -C -DRPC_HDR) as rpcgen does, instead of the built-in one')
    .option('--stdout', 'print the TypeScript instead of writing a file')
    .action(async (file: string, opts: { outDir: string; runtime: string; define: string[]; include: string[]; cpp?: boolean; stdout?: boolean }) => {
      const { readFileSync, writeFileSync, mkdirSync } = await import('node:fs');
      const { basename, join } = await import('node:path');
      const { compileX } = await import('../../oncrpc/index.js');
      const { fromSystemError } = await import('../../errors.js');
      let source: string;
      try {
        source = readFileSync(file, 'utf8');
      } catch (err) {
        throw fromSystemError(err, `rpcgen: cannot read ${file}`);
      }
      const defines: Record<string, string> = {};
      for (const d of opts.define) {
        const eq = d.indexOf('=');
        if (eq < 0) defines[d] = '1';
        else defines[d.slice(0, eq)] = d.slice(eq + 1);
      }
      const compiled = compileX(source, { filename: file, defines, includeDirs: opts.include, ...(opts.cpp ? { useSystemCpp: true } : {}) });
      const ts = compiled.generateTypeScript({ runtime: opts.runtime, source: basename(file) });
      if (opts.stdout) {
        process.stdout.write(ts);
        return;
      }
      const out = join(opts.outDir, basename(file).replace(/\.x$/, '') + '.ts');
      try {
        mkdirSync(opts.outDir, { recursive: true });
        writeFileSync(out, ts);
      } catch (err) {
        throw fromSystemError(err, `rpcgen: cannot write ${out}`);
      }
      process.stderr.write(`wrote ${out}\n`);
    });
}
