/** Tokens of the RPC language, with file:line:column, after preprocessing. */
import type { Loc } from './ast.js';
import { RpcgenError } from './errors.js';
import type { SourceLine } from './preprocess.js';

export type Token =
  | { kind: 'ident'; text: string; loc: Loc }
  | { kind: 'number'; text: string; value: bigint; loc: Loc }
  | { kind: 'punct'; text: string; loc: Loc }
  | { kind: 'eof'; text: ''; loc: Loc };

const PUNCT = new Set(['{', '}', '(', ')', '[', ']', '<', '>', ';', ':', ',', '=', '*', '-']);

export function tokenize(lines: readonly SourceLine[], passthrough: string[] = []): Token[] {
  const out: Token[] = [];
  let inComment: Loc | undefined;
  let last: Loc = { file: lines[0]?.file ?? 'input.x', line: 1, column: 1 };

  const lexText = (text: string, src: SourceLine, at: (col: number) => Loc, depth: number, expanding: ReadonlySet<string>): void => {
    let i = 0;
    while (i < text.length) {
      if (inComment) {
        const end = text.indexOf('*/', i);
        if (end < 0) return;
        inComment = undefined;
        i = end + 2;
        continue;
      }
      const c = text[i] as string;
      if (c === ' ' || c === '\t' || c === '\f' || c === '\v' || c === '\r') {
        i++;
        continue;
      }
      if (c === '/' && text[i + 1] === '*') {
        inComment = at(i);
        i += 2;
        continue;
      }
      if (c === '/' && text[i + 1] === '/') return;
      const loc = at(i);
      if (/[A-Za-z_]/.test(c)) {
        let j = i + 1;
        while (j < text.length && /\w/.test(text[j] as string)) j++;
        const word = text.slice(i, j);
        const macro = src.defines.get(word);
        if (macro !== undefined && !expanding.has(word) && depth < 32) {
          // Object-like macro: its tokens all take the place of the name.
          const saved = inComment;
          lexText(macro, src, () => loc, depth + 1, new Set([...expanding, word]));
          inComment = saved;
        } else out.push({ kind: 'ident', text: word, loc });
        i = j;
        continue;
      }
      if (/[0-9]/.test(c)) {
        const m = /^(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)[uUlL]*(?![\w.])/.exec(text.slice(i));
        if (!m) throw new RpcgenError(loc, `bad number "${/^[\w.]+/.exec(text.slice(i))?.[0] ?? c}"`);
        const digits = m[1] as string;
        const value = /^0[xX]/.test(digits) ? BigInt(digits) : digits.length > 1 && digits.startsWith('0') ? BigInt('0o' + digits.slice(1)) : BigInt(digits);
        out.push({ kind: 'number', text: digits, value, loc });
        i += m[0].length;
        continue;
      }
      if (PUNCT.has(c)) {
        out.push({ kind: 'punct', text: c, loc });
        i++;
        continue;
      }
      throw new RpcgenError(loc, `unexpected character ${JSON.stringify(c)}`);
    }
  };

  for (const src of lines) {
    last = { file: src.file, line: src.line, column: src.text.length + 1 };
    if (!inComment && src.text.startsWith('%')) {
      passthrough.push(src.text.slice(1));
      continue;
    }
    lexText(src.text, src, (col) => ({ file: src.file, line: src.line, column: col + 1 }), 0, new Set());
  }
  if (inComment) throw new RpcgenError(inComment, 'unterminated comment');
  out.push({ kind: 'eof', text: '', loc: last });
  return out;
}
