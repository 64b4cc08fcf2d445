/**
 * TypeScript from a checked `.x` model: constants, types, XDR codecs built
 * from switchboard's codec combinators (`xdr_<type>`), a typed client class
 * per program version, a handler interface to implement and a function that
 * turns an implementation into the procedure table RpcServer.addProgram takes.
 */
import type { Declaration, EnumDef, ProcedureDef, StructDef, TypeSpec, TypedefDef, UnionDef, Value, VersionDef, ProgramDef } from './ast.js';
import type { Model, TypeDef } from './model.js';
import { Printer } from './printer.js';

export interface GenerateOptions {
  /** Module the generated code imports the runtime from (default 'switchboard/oncrpc'). */
  runtime?: string;
  /** The `.x` file name shown in the header. */
  source?: string;
}

const TS_RESERVED = new Set(
  ('break case catch class const continue debugger default delete do else enum export extends false finally for function if import in ' +
    'instanceof new null return super switch this throw true try typeof var void while with as implements interface let package private ' +
    'protected public static yield any boolean number string symbol type object never unknown bigint undefined Array Uint8Array Promise')
    .split(' '),
);
const CLIENT_MEMBERS = new Set(['ping', 'close', 'rpc', 'connect', 'constructor', 'program', 'version']);

/** A .x name as a TypeScript identifier. */
export function tsName(name: string): string {
  return TS_RESERVED.has(name) ? `${name}_` : name;
}

/** BANK_V1 -> BankV1, get_balance -> GetBalance. */
export function pascalCase(name: string): string {
  return name
    .split('_')
    .filter((p) => p !== '')
    .map((p) => (/^[A-Z0-9]+$/.test(p) ? p[0] + p.slice(1).toLowerCase() : (p[0] as string).toUpperCase() + p.slice(1)))
    .join('');
}

export function camelCase(name: string): string {
  const p = pascalCase(name);
  return p === '' ? p : (p[0] as string).toLowerCase() + p.slice(1);
}

export function methodName(proc: string): string {
  const m = camelCase(proc);
  return CLIENT_MEMBERS.has(m) || TS_RESERVED.has(m) ? `${m}Proc` : m;
}

function hex(n: number): string {
  return n > 0xffff ? `0x${n.toString(16)}` : String(n);
}

export function generateTypeScript(model: Model, options: GenerateOptions = {}): string {
  const runtime = options.runtime ?? 'switchboard/oncrpc';
  const f = new Printer();
  const xdr = () => f.value('xdr', runtime);
  const codecType = (t: string) => `${f.type('XdrCodec', runtime)}<${t}>`;
  let current = 0;

  const valueExpr = (v: Value): string => {
    if (v.kind === 'number') return String(v.value);
    if (!model.constants.has(v.name)) return String(model.value(v));
    const e = model.enumOfMember.get(v.name);
    return e ? `${tsName(e.name)}.${v.name}` : tsName(v.name);
  };
  const valueType = (v: Value): string => {
    if (v.kind === 'number') return String(v.value);
    if (!model.constants.has(v.name)) return String(model.value(v));
    const e = model.enumOfMember.get(v.name);
    return e ? `typeof ${tsName(e.name)}.${v.name}` : `typeof ${tsName(v.name)}`;
  };

  const baseType = (t: TypeSpec): string => {
    const r = model.resolve(t);
    if (r.def) return tsName(r.def.name);
    switch (r.spec.kind) {
      case 'int':
      case 'float':
      case 'double':
        return 'number';
      case 'hyper':
        return 'bigint';
      case 'bool':
        return 'boolean';
      case 'void':
        return 'void';
      default:
        return 'never';
    }
  };
  const declType = (d: Declaration): string => {
    if (d.type.kind === 'void') return 'void';
    if (d.type.kind === 'opaque') return 'Uint8Array';
    if (d.type.kind === 'string') return 'string';
    const base = baseType(d.type);
    switch (d.shape.kind) {
      case 'plain':
        return base;
      case 'fixed':
      case 'variable':
        return /^[\w.]+$/.test(base) ? `${base}[]` : `Array<${base}>`;
      case 'optional':
        return `${base} | null`;
    }
  };
  const baseCodec = (t: TypeSpec): string => {
    const r = model.resolve(t);
    if (r.def) {
      const name = `xdr_${r.def.name}`;
      return (model.order.get(r.def.name) ?? 0) >= current ? `${xdr()}.lazy(() => ${name})` : name;
    }
    const s = r.spec;
    switch (s.kind) {
      case 'int':
        return `${xdr()}.${s.unsigned ? 'uint' : 'int'}`;
      case 'hyper':
        return `${xdr()}.${s.unsigned ? 'uhyper' : 'hyper'}`;
      case 'float':
      case 'double':
      case 'bool':
      case 'void':
        return `${xdr()}.${s.kind}`;
      default:
        return `${xdr()}.void`;
    }
  };
  const declCodec = (d: Declaration): string => {
    const sh = d.shape;
    if (d.type.kind === 'void') return `${xdr()}.void`;
    const bound = sh.kind === 'variable' && sh.max ? valueExpr(sh.max) : '';
    if (d.type.kind === 'opaque') return sh.kind === 'fixed' ? `${xdr()}.opaqueFixed(${valueExpr(sh.size)})` : `${xdr()}.opaque(${bound})`;
    if (d.type.kind === 'string') return `${xdr()}.string(${bound})`;
    const base = baseCodec(d.type);
    switch (sh.kind) {
      case 'plain':
        return base;
      case 'fixed':
        return `${xdr()}.fixedArray(${base}, ${valueExpr(sh.size)})`;
      case 'variable':
        return `${xdr()}.array(${base}${bound ? `, ${bound}` : ''})`;
      case 'optional':
        return `${xdr()}.optional(${base})`;
    }
  };

  const emitEnum = (d: EnumDef) => {
    const n = tsName(d.name);
    f.print(`export const ${n} = {`);
    f.indented(() => {
      for (const m of d.members) f.print(`${m.name}: ${String(model.constants.get(m.name))},`);
    });
    f.print('} as const;');
    f.print(`export type ${n} = (typeof ${n})[keyof typeof ${n}];`);
    f.print(`export const xdr_${d.name}: ${codecType(n)} = ${xdr()}.enum<${n}>(${n}, '${d.name}');`);
  };

  const emitStruct = (d: StructDef) => {
    const n = tsName(d.name);
    f.print(`export interface ${n} {`);
    f.indented(() => {
      for (const fd of d.fields) f.print(`${fd.name}: ${declType(fd)};`);
    });
    f.print('}');
    f.print(`export const xdr_${d.name}: ${codecType(n)} = ${xdr()}.struct<${n}>(`);
    f.indented(() => {
      f.print('[');
      f.indented(() => {
        for (const fd of d.fields) f.print(`['${fd.name}', ${declCodec(fd)}],`);
      });
      f.print('],');
      f.print(`'${d.name}',`);
    });
    f.print(');');
  };

  const emitUnion = (d: UnionDef) => {
    const n = tsName(d.name);
    const dk = model.discriminantKind(d);
    const disc = d.discriminant.name;
    const variants: string[] = [];
    const armType = (decl: Declaration) => (decl.type.kind === 'void' ? '' : `; ${decl.name}: ${declType(decl)}`);
    const listed: string[] = [];
    for (const arm of d.arms) {
      const values = model.caseValues(d, arm.cases);
      const types = arm.cases.map((c, i) => (dk.kind === 'bool' ? String(values[i]) : valueType(c)));
      listed.push(...types);
      variants.push(`{ ${disc}: ${types.length > 1 ? `(${types.join(' | ')})` : types[0]}${armType(arm.decl)} }`);
    }
    if (d.defaultArm) {
      const all = dk.kind === 'enum' ? tsName(dk.def.name) : dk.kind === 'bool' ? 'boolean' : 'number';
      const rest = dk.kind === 'int' || dk.kind === 'unsigned' ? 'number' : `Exclude<${all}, ${listed.join(' | ')}>`;
      variants.push(`{ ${disc}: ${rest}${armType(d.defaultArm)} }`);
    }
    f.print(`export type ${n} =`);
    f.indented(() => variants.forEach((v, i) => f.print(`| ${v}${i === variants.length - 1 ? ';' : ''}`)));
    const discCodec = dk.kind === 'bool' ? `${xdr()}.bool` : dk.kind === 'unsigned' ? `${xdr()}.uint` : dk.kind === 'enum' ? baseCodec({ kind: 'ref', name: dk.def.name, loc: d.loc }) : `${xdr()}.int`;
    const arm = (decl: Declaration) => (decl.type.kind === 'void' ? '' : `, name: '${decl.name}', codec: ${declCodec(decl)}`);
    f.print(`export const xdr_${d.name}: ${codecType(n)} = ${xdr()}.union<${n}>(`);
    f.indented(() => {
      f.print(`'${disc}',`);
      f.print(`${discCodec},`);
      f.print('[');
      f.indented(() => {
        for (const a of d.arms) {
          const values = model.caseValues(d, a.cases);
          const cases = dk.kind === 'bool' ? values.map(String) : a.cases.map(valueExpr);
          f.print(`{ cases: [${cases.join(', ')}]${arm(a.decl)} },`);
        }
      });
      f.print('],');
      f.print(d.defaultArm === undefined ? 'null,' : d.defaultArm.type.kind === 'void' ? '{},' : `{ ${arm(d.defaultArm).slice(2)} },`);
      f.print(`'${d.name}',`);
    });
    f.print(');');
  };

  const emitTypedef = (d: TypedefDef) => {
    const n = tsName(d.name);
    f.print(`export type ${n} = ${declType(d.decl)};`);
    f.print(`export const xdr_${d.name}: ${codecType(n)} = ${declCodec(d.decl)};`);
  };

  const procSignature = (p: ProcedureDef) => {
    const params = p.args.length === 1 ? [`arg: ${declType(p.args[0] as Declaration)}`] : p.args.map((a, i) => `arg${i + 1}: ${declType(a)}`);
    const result = declType(p.result);
    return { params, result };
  };
  const argsCodec = (p: ProcedureDef) =>
    p.args.length === 0 ? `${xdr()}.void` : p.args.length === 1 ? declCodec(p.args[0] as Declaration) : `${xdr()}.tuple<[${p.args.map(declType).join(', ')}]>([${p.args.map(declCodec).join(', ')}])`;
  const argsValue = (p: ProcedureDef) => (p.args.length === 0 ? 'undefined' : p.args.length === 1 ? 'arg' : `[${p.args.map((_, i) => `arg${i + 1}`).join(', ')}]`);

  const emitVersion = (prog: ProgramDef, v: VersionDef) => {
    const base = pascalCase(v.name);
    const cls = `${base}Client`;
    const progName = tsName(prog.name);
    const versName = tsName(v.name);
    const RpcClient = f.value('RpcClient', runtime);
    const CallOptions = f.type('CallOptions', runtime);
    f.print(`/** ${prog.name} version ${v.name} (${model.uint(v.number, 'version')}): the client. */`);
    f.print(`export class ${cls} {`);
    f.indented(() => {
      f.print(`static readonly program = ${progName};`);
      f.print(`static readonly version = ${versName};`);
      f.print(`readonly rpc: ${RpcClient};`);
      f.blank();
      f.print(`constructor(rpc: ${RpcClient}) {`);
      f.indented(() => f.print('this.rpc = rpc;'));
      f.print('}');
      f.blank();
      f.print(`static async connect(address: ${f.type('AddressLike', runtime)}, options?: ${f.type('RpcClientOptions', runtime)}): Promise<${cls}> {`);
      f.indented(() => f.print(`return new ${cls}(await ${RpcClient}.connect(address, options));`));
      f.print('}');
      f.blank();
      f.print('/** Procedure 0, NULL. */');
      f.print(`ping(options?: ${CallOptions}): Promise<void> {`);
      f.indented(() => f.print(`return this.rpc.ping(${progName}, ${versName}, options);`));
      f.print('}');
      for (const p of v.procedures) {
        const { params, result } = procSignature(p);
        f.blank();
        f.print(`/** ${p.name} = ${model.uint(p.number, 'procedure')} */`);
        f.print(`${methodName(p.name)}(${[...params, `options?: ${CallOptions}`].join(', ')}): Promise<${result}> {`);
        f.indented(() =>
          f.print(`return this.rpc.call(${progName}, ${versName}, ${model.uint(p.number, 'procedure')}, ${argsCodec(p)}, ${argsValue(p)}, ${declCodec(p.result)}, options);`),
        );
        f.print('}');
      }
      f.blank();
      f.print('close(): Promise<void> {');
      f.indented(() => f.print('return this.rpc.close();'));
      f.print('}');
    });
    f.print('}');
    f.blank();
    const Ctx = f.type('RpcCallContext', runtime);
    f.print(`/** ${prog.name} version ${v.name}: what a server implements. */`);
    f.print(`export interface ${base}Handlers {`);
    f.indented(() => {
      for (const p of v.procedures) {
        const { params, result } = procSignature(p);
        f.print(`${methodName(p.name)}(${[...params, `ctx: ${Ctx}`].join(', ')}): ${result} | Promise<${result}>;`);
      }
    });
    f.print('}');
    f.blank();
    f.print(`/** The procedure table of ${v.name} for RpcServer.addProgram(${progName}, ${versName}, ...). */`);
    f.print(`export function ${camelCase(v.name)}Procedures(impl: ${base}Handlers): ${f.type('ProcedureTable', runtime)} {`);
    f.indented(() => {
      f.print('return {');
      f.indented(() => {
        for (const p of v.procedures) {
          const m = methodName(p.name);
          const call =
            p.args.length === 0
              ? `(_arg: void, ctx: ${Ctx}) => impl.${m}(ctx)`
              : p.args.length === 1
                ? `(arg: ${declType(p.args[0] as Declaration)}, ctx: ${Ctx}) => impl.${m}(arg, ctx)`
                : `(args: [${p.args.map(declType).join(', ')}], ctx: ${Ctx}) => impl.${m}(${p.args.map((_, i) => `args[${i}]`).join(', ')}, ctx)`;
          f.print(`${model.uint(p.number, 'procedure')}: { name: '${p.name}', args: ${argsCodec(p)}, result: ${declCodec(p.result)}, handler: ${call} },`);
        }
      });
      f.print('};');
    });
    f.print('}');
  };

  model.spec.definitions.forEach((d, i) => {
    current = i;
    f.blank();
    switch (d.kind) {
      case 'const':
        f.print(`export const ${tsName(d.name)} = ${String(model.constants.get(d.name))};`);
        break;
      case 'enum':
        emitEnum(d);
        break;
      case 'struct':
        emitStruct(d);
        break;
      case 'union':
        emitUnion(d);
        break;
      case 'typedef':
        emitTypedef(d);
        break;
      case 'program':
        current = Number.MAX_SAFE_INTEGER;
        f.print(`export const ${tsName(d.name)} = ${hex(model.uint(d.number, 'program'))};`);
        for (const v of d.versions) f.print(`export const ${tsName(v.name)} = ${model.uint(v.number, 'version')};`);
        for (const v of d.versions) {
          f.blank();
          emitVersion(d, v);
        }
        break;
    }
  });
  const source = options.source ?? model.spec.file;
  return f.render([
    `// Generated by switchboard rpcgen from ${source}. Do not edit this file:`,
    `// change ${source} and run \`switchboard rpcgen ${source} -o <dir>\` again.`,
  ]);
}

export type { TypeDef };
