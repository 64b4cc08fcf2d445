/**
 * The C preprocessor step of rpcgen. rpcgen pipes its input through `cpp -C`
 * with RPC_HDR (or RPC_XDR, RPC_SVC, RPC_CLNT) defined. We do the same by
 * default with a built-in preprocessor, so the compiler needs no C toolchain
 * and reports exact columns: object-like #define/#undef, #ifdef/#ifndef/
 * #if/#elif/#else/#endif (with defined(), !, &&, ||, comparisons, integer
 * arithmetic), #include "file" and <file> (searched beside the including
 * file, then in includeDirs), #error; #pragma, #ident and #line are ignored.
 * RPC_HDR is predefined, because the header pass is the one that sees every
 * type declaration. `useSystemCpp` runs the real `cpp -C` instead and follows
 * its line markers.
 */
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { Loc } from './ast.js';
import { RpcgenError } from './errors.js';

export interface SourceLine {
  text: string;
  file: string;
  line: number;
  /** Object-like macros in force on this line. */
  defines: ReadonlyMap<string, string>;
}

export interface PreprocessOptions {
  /** Name shown in error messages (default "input.x"). */
  filename?: string;
  /** Extra -D definitions: NAME -> value ('' or '1' for a flag). */
  defines?: Record<string, string>;
  includeDirs?: string[];
  /** Read an included file; defaults to the file system. */
  readFile?: (path: string) => string | undefined;
  /** Run the system `cpp -C` as rpcgen does (needs the file on disk or stdin). */
  useSystemCpp?: boolean;
  cppCommand?: string;
}

const PREDEFINED: Record<string, string> = { RPC_HDR: '1' };

export function preprocess(source: string, options: PreprocessOptions = {}): SourceLine[] {
  const filename = options.filename ?? 'input.x';
  if (options.useSystemCpp) return systemCpp(source, filename, options);
  let defines = new Map<string, string>(Object.entries({ ...PREDEFINED, ...(options.defines ?? {}) }));
  const out: SourceLine[] = [];
  const read = options.readFile ?? ((p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : undefined));
  const stackDepth = { n: 0 };

  const run = (text: string, file: string): void => {
    if (++stackDepth.n > 64) throw new RpcgenError({ file, line: 1, column: 1 }, '#include nested more than 64 deep');
    // Each frame: taking = this branch is active; done = some branch was taken; parentActive.
    const conds: Array<{ taking: boolean; done: boolean; parent: boolean; loc: Loc; sawElse: boolean }> = [];
    const active = () => conds.length === 0 || (conds[conds.length - 1] as { taking: boolean }).taking;
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      let raw = lines[i] as string;
      const lineNo = i + 1;
      // Directives may continue over backslash-newline.
      const m = /^\s*#\s*(\w*)\s*(.*)$/.exec(raw);
      if (m) {
        while (raw.endsWith('\\') && i + 1 < lines.length) raw = raw.slice(0, -1) + ' ' + (lines[++i] as string);
        const full = /^\s*#\s*(\w*)\s*(.*)$/.exec(raw) as RegExpExecArray;
        const directive = full[1] as string;
        const rest = stripComments(full[2] as string).trim();
        const loc: Loc = { file, line: lineNo, column: raw.indexOf('#') + 1 };
        switch (directive) {
          case 'ifdef':
          case 'ifndef': {
            const name = ident(rest, loc, directive);
            const cond = defines.has(name) === (directive === 'ifdef');
            const parent = active();
            conds.push({ taking: parent && cond, done: cond, parent, loc, sawElse: false });
            break;
          }
          case 'if': {
            const parent = active();
            const cond = parent ? evalCondition(rest, defines, loc) : false;
            conds.push({ taking: parent && cond, done: cond, parent, loc, sawElse: false });
            break;
          }
          case 'elif': {
            const top = conds[conds.length - 1];
            if (!top || top.sawElse) throw new RpcgenError(loc, '#elif without #if');
            if (top.done) top.taking = false;
            else {
              const cond = top.parent ? evalCondition(rest, defines, loc) : false;
              top.taking = top.parent && cond;
              top.done = cond;
            }
            break;
          }
          case 'else': {
            const top = conds[conds.length - 1];
            if (!top || top.sawElse) throw new RpcgenError(loc, '#else without #if');
            top.sawElse = true;
            top.taking = top.parent && !top.done;
            top.done = true;
            break;
          }
          case 'endif':
            if (!conds.pop()) throw new RpcgenError(loc, '#endif without #if');
            break;
          default:
            if (!active()) break;
            switch (directive) {
              case 'define': {
                const dm = /^([A-Za-z_]\w*)(\(?)\s*(.*)$/.exec(rest);
                if (!dm) throw new RpcgenError(loc, '#define needs a name');
                if (dm[2] === '(') throw new RpcgenError(loc, `function-like macro ${dm[1]} is not supported without useSystemCpp`);
                defines = new Map(defines).set(dm[1] as string, (dm[3] as string).trim());
                break;
              }
              case 'undef': {
                defines = new Map(defines);
                defines.delete(ident(rest, loc, 'undef'));
                break;
              }
              case 'include': {
                const im = /^(?:"([^"]+)"|<([^>]+)>)$/.exec(rest);
                if (!im) throw new RpcgenError(loc, '#include expects "file" or <file>');
                const name = (im[1] ?? im[2]) as string;
                const candidates = [...(im[1] ? [join(dirname(file), name)] : []), ...(options.includeDirs ?? []).map((d) => join(d, name))];
                let found: string | undefined;
                let body: string | undefined;
                for (const c of candidates) {
                  body = read(resolve(c));
                  if (body !== undefined) {
                    found = c;
                    break;
                  }
                }
                if (found === undefined || body === undefined) throw new RpcgenError(loc, `cannot find #include file ${name}`);
                run(body, found);
                break;
              }
              case 'error':
                throw new RpcgenError(loc, `#error ${rest}`);
              case 'pragma':
              case 'ident':
              case 'line':
              case 'warning':
              case '':
                break;
              default:
                if (/^\d+$/.test(directive)) break; // a line marker from an earlier cpp run
                throw new RpcgenError(loc, `unknown preprocessor directive #${directive}`);
            }
        }
        out.push({ text: '', file, line: lineNo, defines });
        continue;
      }
      out.push({ text: active() ? raw : '', file, line: lineNo, defines });
    }
    const open = conds[conds.length - 1];
    if (open) throw new RpcgenError(open.loc, 'unterminated #if');
    stackDepth.n--;
  };
  run(source, filename);
  return out;
}

function stripComments(s: string): string {
  return s.replace(/\/\*.*?\*\//g, ' ').replace(/\/\/.*$/, '');
}

function ident(rest: string, loc: Loc, directive: string): string {
  const m = /^([A-Za-z_]\w*)/.exec(rest);
  if (!m) throw new RpcgenError(loc, `#${directive} needs a macro name`);
  return m[1] as string;
}

/** #if expressions: integers, defined(X), macros (recursively), ! ~ - + * / % << >> < <= > >= == != & ^ | && || ?: and parentheses. */
function evalCondition(expr: string, defines: ReadonlyMap<string, string>, loc: Loc): boolean {
  const toks: string[] = [];
  const re = /\s*(0[xX][0-9a-fA-F]+|\d+|[A-Za-z_]\w*|&&|\|\||<<|>>|<=|>=|==|!=|[()!~+\-*/%<>&^|?:])/y;
  const expand = (s: string, depth: number): void => {
    const local: string[] = [];
    let m: RegExpExecArray | null;
    const r2 = new RegExp(re.source, 'y');
    let pos = 0;
    while (pos < s.length) {
      if (/^\s*$/.test(s.slice(pos))) break;
      r2.lastIndex = pos;
      m = r2.exec(s);
      if (!m) throw new RpcgenError(loc, `cannot parse #if expression "${expr}"`);
      local.push(m[1] as string);
      pos = r2.lastIndex;
    }
    for (let i = 0; i < local.length; i++) {
      const t = local[i] as string;
      if (t === 'defined') {
        let name = local[i + 1];
        if (name === '(') {
          name = local[i + 2];
          i += 3;
        } else i += 1;
        toks.push(name !== undefined && defines.has(name) ? '1' : '0');
      } else if (/^[A-Za-z_]/.test(t)) {
        const v = defines.get(t);
        if (v === undefined || depth > 32) toks.push('0');
        else if (v === '') toks.push('0');
        else expand(v, depth + 1);
      } else toks.push(t.replace(/[uUlL]+$/, ''));
    }
  };
  expand(expr, 0);
  let p = 0;
  const peek = () => toks[p];
  const take = (t?: string) => {
    const v = toks[p++];
    if (t !== undefined && v !== t) throw new RpcgenError(loc, `expected "${t}" in #if expression "${expr}"`);
    return v;
  };
  const levels: string[][] = [['||'], ['&&'], ['|'], ['^'], ['&'], ['==', '!='], ['<', '<=', '>', '>='], ['<<', '>>'], ['+', '-'], ['*', '/', '%']];
  const apply = (op: string, a: number, b: number): number => {
    switch (op) {
      case '||': return a || b ? 1 : 0;
      case '&&': return a && b ? 1 : 0;
      case '|': return a | b;
      case '^': return a ^ b;
      case '&': return a & b;
      case '==': return a === b ? 1 : 0;
      case '!=': return a !== b ? 1 : 0;
      case '<': return a < b ? 1 : 0;
      case '<=': return a <= b ? 1 : 0;
      case '>': return a > b ? 1 : 0;
      case '>=': return a >= b ? 1 : 0;
      case '<<': return a << b;
      case '>>': return a >> b;
      case '+': return a + b;
      case '-': return a - b;
      case '*': return a * b;
      case '/': if (b === 0) throw new RpcgenError(loc, 'division by zero in #if'); return Math.trunc(a / b);
      default: if (b === 0) throw new RpcgenError(loc, 'division by zero in #if'); return a % b;
    }
  };
  const unary = (): number => {
    const t = take();
    if (t === undefined) throw new RpcgenError(loc, `unexpected end of #if expression "${expr}"`);
    if (t === '!') return unary() ? 0 : 1;
    if (t === '~') return ~unary();
    if (t === '-') return -unary();
    if (t === '+') return unary();
    if (t === '(') {
      const v = ternary();
      take(')');
      return v;
    }
    if (/^(0[xX][0-9a-fA-F]+|\d+)$/.test(t)) return Number(t.startsWith('0') && t.length > 1 && !/^0[xX]/.test(t) ? parseInt(t, 8) : t);
    throw new RpcgenError(loc, `unexpected "${t}" in #if expression "${expr}"`);
  };
  const level = (i: number): number => {
    if (i >= levels.length) return unary();
    let a = level(i + 1);
    for (;;) {
      const t = peek();
      if (t === undefined || !(levels[i] as string[]).includes(t)) return a;
      take();
      a = apply(t, a, level(i + 1));
    }
  };
  const ternary = (): number => {
    const c = level(0);
    if (peek() !== '?') return c;
    take();
    const a = ternary();
    take(':');
    const b = ternary();
    return c ? a : b;
  };
  const v = ternary();
  if (p !== toks.length) throw new RpcgenError(loc, `trailing tokens in #if expression "${expr}"`);
  return v !== 0;
}

function systemCpp(source: string, filename: string, options: PreprocessOptions): SourceLine[] {
  const args = ['-C', '-DRPC_HDR', ...Object.entries(options.defines ?? {}).map(([k, v]) => `-D${k}=${v === '' ? '1' : v}`), ...(options.includeDirs ?? []).map((d) => `-I${d}`)];
  const r = spawnSync(options.cppCommand ?? process.env.CPP ?? 'cpp', args, { input: source, encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new RpcgenError({ file: filename, line: 1, column: 1 }, `cpp failed: ${r.error?.message ?? r.stderr.trim()}`);
  }
  const out: SourceLine[] = [];
  const empty = new Map<string, string>();
  let file = filename;
  let line = 1;
  for (const text of r.stdout.split('\n')) {
    const m = /^#\s*(\d+)\s+"([^"]*)"/.exec(text);
    if (m) {
      line = Number(m[1]);
      file = m[2] === '<stdin>' ? filename : (m[2] as string);
      continue;
    }
    out.push({ text, file, line, defines: empty });
    line++;
  }
  return out;
}
