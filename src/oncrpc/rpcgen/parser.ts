/**
 * A recursive-descent parser for the RPC language as rpcgen reads it: RFC
 * 4506 section 6 plus RFC 5531 section 12 programs, with rpcgen's extras
 * (enum members without values, `struct name` references, long/short/char,
 * several procedure arguments, anonymous inline struct/enum/union types,
 * which are hoisted and named `<outer>_<field>`).
 */
import type { Declaration, Definition, Loc, ProcedureDef, Shape, Specification, TypeSpec, UnionArm, Value, VersionDef } from './ast.js';
import { RpcgenError } from './errors.js';
import type { Token } from './lexer.js';

const KEYWORDS = new Set([
  'bool', 'case', 'const', 'default', 'double', 'quadruple', 'enum', 'float', 'hyper', 'int', 'opaque', 'program',
  'string', 'struct', 'switch', 'typedef', 'union', 'unsigned', 'version', 'void', 'long', 'short', 'char',
]);

export function parse(tokens: readonly Token[], file: string, passthrough: string[] = []): Specification {
  let p = 0;
  const defs: Definition[] = [];
  const peek = (o = 0): Token => tokens[Math.min(p + o, tokens.length - 1)] as Token;
  const next = (): Token => tokens[Math.min(p++, tokens.length - 1)] as Token;
  const describe = (t: Token) => (t.kind === 'eof' ? 'end of file' : `"${t.text}"`);
  const is = (text: string, o = 0) => {
    const t = peek(o);
    return (t.kind === 'punct' || t.kind === 'ident') && t.text === text;
  };
  const expect = (text: string, what?: string): Token => {
    const t = next();
    if ((t.kind === 'punct' || t.kind === 'ident') && t.text === text) return t;
    throw new RpcgenError(t.loc, `expected "${text}"${what ? ` ${what}` : ''}, found ${describe(t)}`);
  };
  const identifier = (what: string): { name: string; loc: Loc } => {
    const t = next();
    if (t.kind !== 'ident' || KEYWORDS.has(t.text)) throw new RpcgenError(t.loc, `expected ${what}, found ${describe(t)}`);
    return { name: t.text, loc: t.loc };
  };
  const value = (what: string): Value => {
    const t = next();
    if (t.kind === 'number') return { kind: 'number', value: t.value, loc: t.loc };
    if (t.kind === 'punct' && t.text === '-') {
      const n = next();
      if (n.kind !== 'number') throw new RpcgenError(n.loc, `expected a number after "-", found ${describe(n)}`);
      return { kind: 'number', value: -n.value, loc: t.loc };
    }
    if (t.kind === 'ident' && !KEYWORDS.has(t.text)) return { kind: 'ref', name: t.text, loc: t.loc };
    throw new RpcgenError(t.loc, `expected ${what} (a number or a constant name), found ${describe(t)}`);
  };

  /** A type specifier; inline struct/enum/union bodies are hoisted under `hoistName`. */
  const typeSpec = (hoistName: () => string): TypeSpec => {
    const t = next();
    if (t.kind !== 'ident') throw new RpcgenError(t.loc, `expected a type, found ${describe(t)}`);
    switch (t.text) {
      case 'unsigned': {
        if (is('int') || is('long') || is('short') || is('char')) {
          next();
          return { kind: 'int', unsigned: true };
        }
        if (is('hyper')) {
          next();
          return { kind: 'hyper', unsigned: true };
        }
        return { kind: 'int', unsigned: true };
      }
      case 'int':
      case 'long':
      case 'short':
      case 'char':
        return { kind: 'int', unsigned: false };
      case 'hyper':
        return { kind: 'hyper', unsigned: false };
      case 'float':
        return { kind: 'float' };
      case 'double':
        return { kind: 'double' };
      case 'quadruple':
        throw new RpcgenError(t.loc, 'quadruple is not supported: JavaScript has no 128-bit float (declare it as opaque name[16])');
      case 'bool':
        return { kind: 'bool' };
      case 'opaque':
        return { kind: 'opaque' };
      case 'string':
        return { kind: 'string' };
      case 'void':
        return { kind: 'void' };
      case 'struct':
      case 'enum':
      case 'union': {
        if (peek().kind === 'ident' && !KEYWORDS.has(peek().text) && !(t.text === 'union' && is('switch', 1))) {
          const n = next();
          if (is('{') || (t.text === 'union' && is('switch'))) {
            throw new RpcgenError(n.loc, `a named ${t.text} cannot be defined inside a declaration; define ${n.text} on its own`);
          }
          return { kind: 'ref', name: n.text, loc: n.loc };
        }
        const name = hoistName();
        const def = t.text === 'struct' ? structBody(name, t.loc) : t.text === 'enum' ? enumBody(name, t.loc) : unionBody(name, t.loc);
        defs.push(def);
        return { kind: 'ref', name, loc: t.loc };
      }
      default:
        if (KEYWORDS.has(t.text)) throw new RpcgenError(t.loc, `expected a type, found "${t.text}"`);
        return { kind: 'ref', name: t.text, loc: t.loc };
    }
  };

  const declaration = (outer: string): Declaration => {
    const start = peek();
    if (is('void')) {
      next();
      return { name: '', type: { kind: 'void' }, shape: { kind: 'plain' }, loc: start.loc };
    }
    let fieldName = '';
    const type = typeSpec(() => `${outer}_${peekFieldName()}`);
    let shape: Shape = { kind: 'plain' };
    if (is('*')) {
      next();
      shape = { kind: 'optional' };
    }
    const id = identifier('a name');
    fieldName = id.name;
    if (shape.kind === 'plain') {
      if (is('[')) {
        next();
        shape = { kind: 'fixed', size: value('an array size') };
        expect(']');
      } else if (is('<')) {
        next();
        shape = { kind: 'variable', max: is('>') ? undefined : value('an array bound') };
        expect('>');
      }
    }
    if (type.kind === 'string' && shape.kind !== 'variable') throw new RpcgenError(id.loc, `string ${fieldName} needs a bound: string ${fieldName}<> or <n>`);
    if (type.kind === 'opaque' && shape.kind !== 'variable' && shape.kind !== 'fixed') throw new RpcgenError(id.loc, `opaque ${fieldName} needs a size [n] or a bound <n>`);
    return { name: fieldName, type, shape, loc: id.loc };
  };
  // The name of the field being declared, looked ahead past an inline body, for hoisting.
  const peekFieldName = (): string => {
    let depth = 0;
    for (let o = 0; ; o++) {
      const t = peek(o);
      if (t.kind === 'eof') return 'anon';
      if (t.text === '{') depth++;
      else if (t.text === '}') {
        depth--;
        if (depth === 0) {
          const n = peek(o + 1).text === '*' ? peek(o + 2) : peek(o + 1);
          return n.kind === 'ident' ? n.text : 'anon';
        }
      }
    }
  };

  const structBody = (name: string, loc: Loc): Definition => {
    expect('{', `to open struct ${name}`);
    const fields: Declaration[] = [];
    while (!is('}')) {
      const d = declaration(name);
      if (d.type.kind === 'void') throw new RpcgenError(d.loc, 'a struct field cannot be void');
      fields.push(d);
      expect(';', 'after a struct field');
    }
    expect('}');
    if (fields.length === 0) throw new RpcgenError(loc, `struct ${name} has no fields`);
    return { kind: 'struct', name, fields, loc };
  };

  const enumBody = (name: string, loc: Loc): Definition => {
    expect('{', `to open enum ${name}`);
    const members: Array<{ name: string; value: Value | undefined; loc: Loc }> = [];
    for (;;) {
      const id = identifier('an enum member name');
      let v: Value | undefined;
      if (is('=')) {
        next();
        v = value('an enum value');
      }
      members.push({ name: id.name, value: v, loc: id.loc });
      if (is(',')) {
        next();
        if (is('}')) break;
        continue;
      }
      break;
    }
    expect('}', `to close enum ${name}`);
    return { kind: 'enum', name, members, loc };
  };

  const unionBody = (name: string, loc: Loc): Definition => {
    expect('switch', `in union ${name}`);
    expect('(');
    const discriminant = declaration(name);
    expect(')');
    expect('{');
    const arms: UnionArm[] = [];
    let defaultArm: Declaration | undefined;
    while (!is('}')) {
      if (is('default')) {
        const d = next();
        if (defaultArm) throw new RpcgenError(d.loc, `union ${name} has two default arms`);
        expect(':');
        defaultArm = declaration(name);
        expect(';');
        continue;
      }
      const cases: Value[] = [];
      while (is('case')) {
        next();
        cases.push(value('a case value'));
        expect(':');
      }
      if (cases.length === 0) throw new RpcgenError(peek().loc, `expected "case" or "default" in union ${name}, found ${describe(peek())}`);
      const decl = declaration(name);
      expect(';', 'after a union arm');
      arms.push({ cases, decl });
    }
    expect('}');
    return { kind: 'union', name, discriminant, arms, defaultArm, loc };
  };

  const procedure = (): ProcedureDef => {
    const start = peek();
    const result = declarationOfType('procedure result');
    const id = identifier('a procedure name');
    expect('(');
    const args: Declaration[] = [];
    for (;;) {
      args.push(declarationOfType('procedure argument'));
      if (!is(',')) break;
      next();
    }
    expect(')');
    expect('=');
    const number = value('a procedure number');
    expect(';', 'after a procedure');
    const realArgs = args.length === 1 && args[0]?.type.kind === 'void' ? [] : args;
    if (realArgs.some((a) => a.type.kind === 'void')) throw new RpcgenError(start.loc, `void must be the only argument of ${id.name}`);
    return { name: id.name, number, result, args: realArgs, loc: id.loc };
  };
  // A bare type in a procedure signature: void, a type, `string` (string<>), `type *`.
  const declarationOfType = (what: string): Declaration => {
    const t = peek();
    const type = typeSpec(() => {
      throw new RpcgenError(t.loc, `an inline type is not allowed as a ${what}`);
    });
    let shape: Shape = { kind: 'plain' };
    if (type.kind === 'string') shape = { kind: 'variable', max: undefined };
    if (type.kind === 'opaque') throw new RpcgenError(t.loc, `opaque is not allowed as a ${what}; use a typedef`);
    if (is('*')) {
      next();
      shape = { kind: 'optional' };
    }
    return { name: '', type, shape, loc: t.loc };
  };

  const version = (): VersionDef => {
    expect('version');
    const id = identifier('a version name');
    expect('{');
    const procedures: ProcedureDef[] = [];
    while (!is('}')) procedures.push(procedure());
    expect('}');
    expect('=');
    const number = value('a version number');
    expect(';', 'after a version');
    if (procedures.length === 0) throw new RpcgenError(id.loc, `version ${id.name} has no procedures`);
    return { name: id.name, number, procedures, loc: id.loc };
  };

  while (peek().kind !== 'eof') {
    const t = next();
    if (t.kind !== 'ident') throw new RpcgenError(t.loc, `expected a definition (const, typedef, enum, struct, union, program), found ${describe(t)}`);
    switch (t.text) {
      case 'const': {
        const id = identifier('a constant name');
        expect('=');
        const v = value('a constant value');
        expect(';', 'after a constant');
        defs.push({ kind: 'const', name: id.name, value: v, loc: id.loc });
        break;
      }
      case 'typedef': {
        const d = declaration('typedef');
        if (d.type.kind === 'void') throw new RpcgenError(d.loc, 'cannot typedef void');
        expect(';', 'after a typedef');
        defs.push({ kind: 'typedef', name: d.name, decl: d, loc: d.loc });
        break;
      }
      case 'struct':
      case 'enum':
      case 'union': {
        const id = identifier(`a ${t.text} name`);
        defs.push(t.text === 'struct' ? structBody(id.name, id.loc) : t.text === 'enum' ? enumBody(id.name, id.loc) : unionBody(id.name, id.loc));
        expect(';', `after ${t.text} ${id.name}`);
        break;
      }
      case 'program': {
        const id = identifier('a program name');
        expect('{');
        const versions: VersionDef[] = [];
        while (!is('}')) versions.push(version());
        expect('}');
        expect('=');
        const number = value('a program number');
        expect(';', 'after a program');
        defs.push({ kind: 'program', name: id.name, number, versions, loc: id.loc });
        break;
      }
      default:
        throw new RpcgenError(t.loc, `expected a definition (const, typedef, enum, struct, union, program), found "${t.text}"`);
    }
  }
  return { file, definitions: defs, passthrough };
}
