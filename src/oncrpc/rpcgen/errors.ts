import { SwitchboardError } from '../../errors.js';
import type { Loc } from './ast.js';

/** An error in a `.x` file, with its place: `bank.x:12:5: expected ';'`. */
export class RpcgenError extends SwitchboardError {
  override name = 'RpcgenError';
  readonly file: string;
  readonly line: number;
  readonly column: number;
  constructor(loc: Loc, message: string) {
    super('EINVAL', `${loc.file}:${loc.line}:${loc.column}: ${message}`);
    this.file = loc.file;
    this.line = loc.line;
    this.column = loc.column;
  }
}
