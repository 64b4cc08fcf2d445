/**
 * Checks a parsed `.x` file (every name defined once, every reference and
 * constant resolved, bounds and numbers in range, union cases distinct) and
 * builds XDR codecs from it at run time.
 */
import type { Declaration, Definition, EnumDef, Loc, ProgramDef, Specification, StructDef, TypeSpec, TypedefDef, UnionDef, Value } from './ast.js';
import { RpcgenError } from './errors.js';
import { xdr, type XdrCodec } from '../../wire/index.js';

export type TypeDef = EnumDef | StructDef | UnionDef | TypedefDef;

/** C type names rpcgen users write that are not RPC-language keywords. */
export const BUILTIN_ALIASES: Readonly<Record<string, TypeSpec>> = {
  u_int: { kind: 'int', unsigned: true },
  u_long: { kind: 'int', unsigned: true },
  u_short: { kind: 'int', unsigned: true },
  u_char: { kind: 'int', unsigned: true },
  uint32_t: { kind: 'int', unsigned: true },
  uint16_t: { kind: 'int', unsigned: true },
  uint8_t: { kind: 'int', unsigned: true },
  int32_t: { kind: 'int', unsigned: false },
  int16_t: { kind: 'int', unsigned: false },
  int8_t: { kind: 'int', unsigned: false },
  int64_t: { kind: 'hyper', unsigned: false },
  quad_t: { kind: 'hyper', unsigned: false },
  longlong_t: { kind: 'hyper', unsigned: false },
  uint64_t: { kind: 'hyper', unsigned: true },
  u_quad_t: { kind: 'hyper', unsigned: true },
  u_longlong_t: { kind: 'hyper', unsigned: true },
  bool_t: { kind: 'bool' },
};

const MAX_U32 = 0xffff_ffffn;

export class Model {
  readonly spec: Specification;
  /** Constants and enum members by name. */
  readonly constants = new Map<string, bigint>();
  /** Which enum each enum member belongs to. */
  readonly enumOfMember = new Map<string, EnumDef>();
  readonly types = new Map<string, TypeDef>();
  /** Position of each type in the file, to tell forward references. */
  readonly order = new Map<string, number>();
  readonly programs: ProgramDef[] = [];

  constructor(spec: Specification) {
    this.spec = spec;
    const names = new Map<string, Loc>();
    const claim = (name: string, loc: Loc) => {
      const prev = names.get(name);
      if (prev) throw new RpcgenError(loc, `"${name}" is already defined at ${prev.file}:${prev.line}:${prev.column}`);
      names.set(name, loc);
    };
    spec.definitions.forEach((d, i) => {
      claim(d.name, d.loc);
      if (d.kind === 'const') this.constants.set(d.name, this.value(d.value));
      else if (d.kind === 'program') this.programs.push(d);
      else {
        this.types.set(d.name, d);
        this.order.set(d.name, i);
        if (d.kind === 'enum') {
          let next = 0n;
          const seen = new Map<bigint, string>();
          for (const m of d.members) {
            claim(m.name, m.loc);
            const v = m.value === undefined ? next : this.value(m.value);
            if (v < -(1n << 31n) || v > (1n << 31n) - 1n) throw new RpcgenError(m.loc, `enum value ${v} of ${m.name} does not fit in an int`);
            const dup = seen.get(v);
            if (dup !== undefined) throw new RpcgenError(m.loc, `${m.name} has the same value ${v} as ${dup}`);
            seen.set(v, m.name);
            this.constants.set(m.name, v);
            this.enumOfMember.set(m.name, d);
            next = v + 1n;
          }
        }
      }
    });
    for (const d of spec.definitions) this.check(d);
  }

  value(v: Value): bigint {
    if (v.kind === 'number') return v.value;
    // TRUE and FALSE come from the C headers in rpcgen's world; .x files use them in bool unions.
    const c = this.constants.get(v.name) ?? (v.name === 'TRUE' ? 1n : v.name === 'FALSE' ? 0n : undefined);
    if (c === undefined) throw new RpcgenError(v.loc, `unknown constant "${v.name}"`);
    return c;
  }

  uint(v: Value, what: string): number {
    const n = this.value(v);
    if (n < 0n || n > MAX_U32) throw new RpcgenError(v.loc, `${what} ${n} is not an unsigned int`);
    return Number(n);
  }

  /** Follow typedefs and builtin aliases to what a type specifier really is. */
  resolve(t: TypeSpec): { spec: TypeSpec; def?: TypeDef | undefined } {
    if (t.kind !== 'ref') return { spec: t };
    const def = this.types.get(t.name);
    if (def !== undefined) return { spec: t, def };
    const alias = BUILTIN_ALIASES[t.name];
    if (alias !== undefined) return { spec: alias };
    throw new RpcgenError(t.loc, `unknown type "${t.name}"`);
  }

  /** The discriminant kind of a union: enum (with its definition), int, unsigned or bool. */
  discriminantKind(u: UnionDef): { kind: 'enum'; def: EnumDef } | { kind: 'int' | 'unsigned' | 'bool' } {
    const d = u.discriminant;
    if (d.shape.kind !== 'plain') throw new RpcgenError(d.loc, 'a union discriminant must be a plain int, unsigned int, enum or bool');
    let t = d.type;
    for (let i = 0; i < 64; i++) {
      if (t.kind === 'int') return { kind: t.unsigned ? 'unsigned' : 'int' };
      if (t.kind === 'bool') return { kind: 'bool' };
      if (t.kind !== 'ref') break;
      const r = this.resolve(t);
      if (r.def === undefined) {
        t = r.spec;
        continue;
      }
      if (r.def.kind === 'enum') return { kind: 'enum', def: r.def };
      if (r.def.kind === 'typedef' && r.def.decl.shape.kind === 'plain') {
        t = r.def.decl.type;
        continue;
      }
      break;
    }
    throw new RpcgenError(d.loc, 'a union discriminant must be int, unsigned int, enum or bool');
  }

  /** Case values of a union arm, as numbers (or booleans for a bool discriminant). */
  caseValues(u: UnionDef, values: readonly Value[]): Array<number | boolean> {
    const dk = this.discriminantKind(u);
    return values.map((v) => {
      const n = this.value(v);
      if (dk.kind === 'bool') {
        if (n !== 0n && n !== 1n) throw new RpcgenError(v.loc, `case ${n} is not a bool (TRUE/FALSE, 1/0)`);
        return n === 1n;
      }
      if (dk.kind === 'enum') {
        if (!dk.def.members.some((m) => this.constants.get(m.name) === n)) throw new RpcgenError(v.loc, `case ${n} is not a value of enum ${dk.def.name}`);
      }
      if (dk.kind === 'unsigned' ? n < 0n || n > MAX_U32 : n < -(1n << 31n) || n > (1n << 31n) - 1n) throw new RpcgenError(v.loc, `case ${n} does not fit the discriminant`);
      return Number(n);
    });
  }

  private checkDecl(d: Declaration, allowVoid: boolean): void {
    if (d.type.kind === 'void') {
      if (!allowVoid) throw new RpcgenError(d.loc, 'void is not allowed here');
      return;
    }
    this.resolve(d.type);
    if (d.shape.kind === 'fixed') this.uint(d.shape.size, 'array size');
    if (d.shape.kind === 'variable' && d.shape.max) this.uint(d.shape.max, 'bound');
  }

  private check(d: Definition): void {
    switch (d.kind) {
      case 'struct':
        for (const f of d.fields) this.checkDecl(f, false);
        {
          const seen = new Set<string>();
          for (const f of d.fields) {
            if (seen.has(f.name)) throw new RpcgenError(f.loc, `struct ${d.name} has two fields named ${f.name}`);
            seen.add(f.name);
          }
        }
        break;
      case 'typedef':
        this.checkDecl(d.decl, false);
        break;
      case 'union': {
        this.discriminantKind(d);
        const seen = new Set<number | boolean>();
        for (const arm of d.arms) {
          this.checkDecl(arm.decl, true);
          const values = this.caseValues(d, arm.cases);
          values.forEach((v, i) => {
            if (seen.has(v)) throw new RpcgenError((arm.cases[i] as Value).loc, `case ${String(v)} appears twice in union ${d.name}`);
            seen.add(v);
          });
          if (arm.decl.type.kind !== 'void' && arm.decl.name === d.discriminant.name) throw new RpcgenError(arm.decl.loc, `arm ${arm.decl.name} has the discriminant's name`);
        }
        if (d.defaultArm) this.checkDecl(d.defaultArm, true);
        break;
      }
      case 'program': {
        this.uint(d.number, 'program number');
        const versions = new Set<number>();
        for (const v of d.versions) {
          const vn = this.uint(v.number, 'version number');
          if (versions.has(vn)) throw new RpcgenError(v.loc, `program ${d.name} has two versions numbered ${vn}`);
          versions.add(vn);
          const procs = new Set<number>();
          const names = new Set<string>();
          for (const p of v.procedures) {
            const pn = this.uint(p.number, 'procedure number');
            if (procs.has(pn)) throw new RpcgenError(p.loc, `version ${v.name} has two procedures numbered ${pn}`);
            if (names.has(p.name)) throw new RpcgenError(p.loc, `version ${v.name} has two procedures named ${p.name}`);
            procs.add(pn);
            names.add(p.name);
            this.checkDecl(p.result, true);
            for (const a of p.args) this.checkDecl(a, false);
          }
        }
        break;
      }
      default:
        break;
    }
  }

  // --- run-time codecs ---------------------------------------------------

  readonly #codecs = new Map<string, XdrCodec<unknown>>();

  /** The codec of a named type (struct, union, enum, typedef). */
  codecOf(name: string): XdrCodec<unknown> {
    const cached = this.#codecs.get(name);
    if (cached) return cached;
    const def = this.types.get(name);
    if (def === undefined) throw new RpcgenError({ file: this.spec.file, line: 1, column: 1 }, `unknown type "${name}"`);
    // Register a lazy placeholder first so that recursive types terminate.
    let built: XdrCodec<unknown> | undefined;
    this.#codecs.set(name, xdr.lazy(() => built as XdrCodec<unknown>));
    built = this.#build(def);
    this.#codecs.set(name, built);
    return built;
  }

  #build(def: TypeDef): XdrCodec<unknown> {
    switch (def.kind) {
      case 'enum':
        return xdr.enum(def.members.map((m) => Number(this.constants.get(m.name))), def.name) as XdrCodec<unknown>;
      case 'typedef':
        return this.declCodec(def.decl);
      case 'struct':
        return xdr.struct(def.fields.map((f) => [f.name, this.declCodec(f)] as const), def.name);
      case 'union': {
        const dk = this.discriminantKind(def);
        const disc = (dk.kind === 'bool' ? xdr.bool : dk.kind === 'unsigned' ? xdr.uint : dk.kind === 'enum' ? this.codecOf(dk.def.name) : xdr.int) as XdrCodec<number>;
        const arm = (d: Declaration) => (d.type.kind === 'void' ? {} : { name: d.name, codec: this.declCodec(d) });
        return xdr.union(
          def.discriminant.name,
          disc,
          def.arms.map((a) => ({ cases: this.caseValues(def, a.cases), ...arm(a.decl) })),
          def.defaultArm ? arm(def.defaultArm) : null,
          def.name,
        );
      }
    }
  }

  baseCodec(t: TypeSpec): XdrCodec<unknown> {
    const r = this.resolve(t);
    if (r.def !== undefined) return this.codecOf(r.def.name);
    const s = r.spec;
    switch (s.kind) {
      case 'int':
        return (s.unsigned ? xdr.uint : xdr.int) as XdrCodec<unknown>;
      case 'hyper':
        return (s.unsigned ? xdr.uhyper : xdr.hyper) as XdrCodec<unknown>;
      case 'float':
        return xdr.float as XdrCodec<unknown>;
      case 'double':
        return xdr.double as XdrCodec<unknown>;
      case 'bool':
        return xdr.bool as XdrCodec<unknown>;
      case 'void':
        return xdr.void as XdrCodec<unknown>;
      default:
        throw new RpcgenError((t as { loc?: Loc }).loc ?? { file: this.spec.file, line: 1, column: 1 }, `${s.kind} needs a size or bound`);
    }
  }

  declCodec(d: Declaration): XdrCodec<unknown> {
    const sh = d.shape;
    if (d.type.kind === 'void') return xdr.void as XdrCodec<unknown>;
    if (d.type.kind === 'opaque') {
      if (sh.kind === 'fixed') return xdr.opaqueFixed(this.uint(sh.size, 'size')) as XdrCodec<unknown>;
      if (sh.kind === 'variable') return xdr.opaque(sh.max ? this.uint(sh.max, 'bound') : undefined) as XdrCodec<unknown>;
    }
    if (d.type.kind === 'string') return xdr.string(sh.kind === 'variable' && sh.max ? this.uint(sh.max, 'bound') : undefined) as XdrCodec<unknown>;
    const base = this.baseCodec(d.type);
    switch (sh.kind) {
      case 'plain':
        return base;
      case 'fixed':
        return xdr.fixedArray(base, this.uint(sh.size, 'size')) as XdrCodec<unknown>;
      case 'variable':
        return xdr.array(base, sh.max ? this.uint(sh.max, 'bound') : undefined) as XdrCodec<unknown>;
      case 'optional':
        return xdr.optional(base) as XdrCodec<unknown>;
    }
  }

  /** Arguments of a procedure as one codec: void, the single argument, or a tuple. */
  argsCodec(args: readonly Declaration[]): XdrCodec<unknown> {
    if (args.length === 0) return xdr.void as XdrCodec<unknown>;
    if (args.length === 1) return this.declCodec(args[0] as Declaration);
    return xdr.tuple(args.map((a) => this.declCodec(a))) as XdrCodec<unknown>;
  }
}
