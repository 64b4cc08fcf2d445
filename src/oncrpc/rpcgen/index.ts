/**
 * The RPC-language compiler (`switchboard rpcgen`): `.x` text -> checked
 * model -> TypeScript source, or -> codecs, clients and procedure tables at
 * run time with no build step.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Specification, VersionDef, ProgramDef, Declaration } from './ast.js';
import { tokenize } from './lexer.js';
import { parse } from './parser.js';
import { preprocess, type PreprocessOptions } from './preprocess.js';
import { Model } from './model.js';
import { generateTypeScript, methodName, type GenerateOptions } from './generate-ts.js';
import { RpcgenError } from './errors.js';
import type { RpcClient, CallOptions } from '../client.js';
import type { ProcedureTable, RpcCallContext } from '../server.js';
import type { XdrCodec } from '../../wire/index.js';

export { RpcgenError } from './errors.js';
export { generateTypeScript, pascalCase, camelCase, methodName, type GenerateOptions } from './generate-ts.js';
export { Model } from './model.js';
export type { PreprocessOptions } from './preprocess.js';
export type * from './ast.js';

export type CompileOptions = PreprocessOptions;

/** Parse `.x` source (after preprocessing) into a syntax tree. */
export function parseX(source: string, options: CompileOptions = {}): Specification {
  const file = options.filename ?? 'input.x';
  const lines = preprocess(source, { ...options, filename: file });
  const passthrough: string[] = [];
  return parse(tokenize(lines, passthrough), file, passthrough);
}

export interface RuntimeProcedure {
  name: string;
  /** Method name in generated clients and handler objects (WITHDRAW -> withdraw). */
  method: string;
  number: number;
  args: XdrCodec<unknown>;
  result: XdrCodec<unknown>;
  arity: number;
}

export interface RuntimeVersion {
  name: string;
  number: number;
  procedures: RuntimeProcedure[];
}

export interface RuntimeProgram {
  name: string;
  number: number;
  versions: RuntimeVersion[];
}

export type DynamicClient = Record<string, (...args: unknown[]) => Promise<unknown>>;
export type DynamicHandlers = Record<string, (...args: unknown[]) => unknown>;

/** A `.x` file compiled at run time. */
export class CompiledX {
  readonly spec: Specification;
  readonly model: Model;
  readonly programs: RuntimeProgram[];

  constructor(spec: Specification) {
    this.spec = spec;
    this.model = new Model(spec);
    this.programs = this.model.programs.map((p: ProgramDef) => ({
      name: p.name,
      number: this.model.uint(p.number, 'program number'),
      versions: p.versions.map((v: VersionDef) => ({
        name: v.name,
        number: this.model.uint(v.number, 'version number'),
        procedures: v.procedures.map((pr) => ({
          name: pr.name,
          method: methodName(pr.name),
          number: this.model.uint(pr.number, 'procedure number'),
          args: this.model.argsCodec(pr.args),
          result: this.model.declCodec(pr.result as Declaration),
          arity: pr.args.length,
        })),
      })),
    }));
  }

  /** Constants and enum members by name. */
  constant(name: string): bigint | undefined {
    return this.model.constants.get(name);
  }

  /** The codec of a named type. */
  codec<T = unknown>(typeName: string): XdrCodec<T> {
    return this.model.codecOf(typeName) as XdrCodec<T>;
  }

  version(program: string, version: string): { program: RuntimeProgram; version: RuntimeVersion } {
    const p = this.programs.find((x) => x.name === program);
    const v = p?.versions.find((x) => x.name === version);
    if (!p || !v) throw new RpcgenError({ file: this.spec.file, line: 1, column: 1 }, `no program ${program} version ${version}`);
    return { program: p, version: v };
  }

  /** A client object with one method per procedure (`withdraw(arg)`), over an RpcClient. */
  client(rpc: RpcClient, program: string, version: string): DynamicClient {
    const { program: p, version: v } = this.version(program, version);
    const out: DynamicClient = {};
    for (const pr of v.procedures) {
      out[pr.method] = (...args: unknown[]) => {
        const value = pr.arity === 0 ? undefined : pr.arity === 1 ? args[0] : args.slice(0, pr.arity);
        const options = args[pr.arity] as CallOptions | undefined;
        return rpc.call(p.number, v.number, pr.number, pr.args, value, pr.result, options);
      };
    }
    return out;
  }

  /** A procedure table for RpcServer.addProgram from an object of handlers named like the client methods. */
  procedures(program: string, version: string, impl: DynamicHandlers): ProcedureTable {
    const { version: v } = this.version(program, version);
    const table: Record<number, ProcedureTable[number]> = {};
    for (const pr of v.procedures) {
      const fn = impl[pr.method];
      if (fn === undefined) continue;
      table[pr.number] = {
        name: pr.name,
        args: pr.args,
        result: pr.result,
        handler: (arg: unknown, ctx: RpcCallContext) =>
          pr.arity === 0 ? fn.call(impl, ctx) : pr.arity === 1 ? fn.call(impl, arg, ctx) : fn.call(impl, ...(arg as unknown[]), ctx),
      };
    }
    return table;
  }

  generateTypeScript(options: GenerateOptions = {}): string {
    return generateTypeScript(this.model, { source: basename(this.spec.file), ...options });
  }
}

/** Compile `.x` source at run time. Errors are RpcgenError with file:line:column. */
export function compileX(source: string, options: CompileOptions = {}): CompiledX {
  return new CompiledX(parseX(source, options));
}

export function compileXFile(path: string, options: CompileOptions = {}): CompiledX {
  return compileX(readFileSync(path, 'utf8'), { filename: path, ...options });
}
