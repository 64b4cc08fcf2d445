/**
 * A small code printer that tracks imports (in the spirit of protobuf-es
 * protoplugin): code asks for a name from a module, the printer writes the
 * import lines at the top, values and types apart.
 */
export class Printer {
  readonly #lines: string[] = [];
  readonly #values = new Map<string, Set<string>>();
  readonly #types = new Map<string, Set<string>>();
  #indent = 0;

  /** Use a value exported by `from`; returns the name to write. */
  value(name: string, from: string): string {
    let s = this.#values.get(from);
    if (!s) this.#values.set(from, (s = new Set()));
    s.add(name);
    return name;
  }

  /** Use a type exported by `from`; returns the name to write. */
  type(name: string, from: string): string {
    let s = this.#types.get(from);
    if (!s) this.#types.set(from, (s = new Set()));
    s.add(name);
    return name;
  }

  print(...parts: string[]): this {
    const text = parts.join('');
    this.#lines.push(text === '' ? '' : '  '.repeat(this.#indent) + text);
    return this;
  }

  blank(): this {
    if (this.#lines.length > 0 && this.#lines[this.#lines.length - 1] !== '') this.#lines.push('');
    return this;
  }

  indented(body: () => void): this {
    this.#indent++;
    try {
      body();
    } finally {
      this.#indent--;
    }
    return this;
  }

  /** The file: header comment, imports, body. */
  render(header: readonly string[]): string {
    const out = [...header];
    const sorted = (m: Map<string, Set<string>>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [from, names] of sorted(this.#values)) out.push(`import { ${[...names].sort().join(', ')} } from '${from}';`);
    for (const [from, names] of sorted(this.#types)) out.push(`import type { ${[...names].sort().join(', ')} } from '${from}';`);
    out.push('');
    while (this.#lines.length > 0 && this.#lines[this.#lines.length - 1] === '') this.#lines.pop();
    out.push(...this.#lines);
    return out.join('\n') + '\n';
  }
}
