/** The syntax tree of an RPC-language (`.x`) file (RFC 4506 section 6, RFC 5531 section 12). */

export interface Loc {
  file: string;
  line: number;
  column: number;
}

/** A constant or a reference to a named constant or enum member. */
export type Value = { kind: 'number'; value: bigint; loc: Loc } | { kind: 'ref'; name: string; loc: Loc };

export type TypeSpec =
  | { kind: 'int'; unsigned: boolean }
  | { kind: 'hyper'; unsigned: boolean }
  | { kind: 'float' }
  | { kind: 'double' }
  | { kind: 'quadruple' }
  | { kind: 'bool' }
  | { kind: 'void' }
  | { kind: 'opaque' }
  | { kind: 'string' }
  | { kind: 'ref'; name: string; loc: Loc };

/** How a declaration wraps its base type. */
export type Shape =
  | { kind: 'plain' }
  | { kind: 'fixed'; size: Value }
  | { kind: 'variable'; max: Value | undefined }
  | { kind: 'optional' };

export interface Declaration {
  name: string;
  type: TypeSpec;
  shape: Shape;
  loc: Loc;
}

export interface EnumDef {
  kind: 'enum';
  name: string;
  members: Array<{ name: string; value: Value | undefined; loc: Loc }>;
  loc: Loc;
}

export interface StructDef {
  kind: 'struct';
  name: string;
  fields: Declaration[];
  loc: Loc;
}

export interface UnionArm {
  cases: Value[];
  decl: Declaration;
}

export interface UnionDef {
  kind: 'union';
  name: string;
  discriminant: Declaration;
  arms: UnionArm[];
  defaultArm: Declaration | undefined;
  loc: Loc;
}

export interface TypedefDef {
  kind: 'typedef';
  name: string;
  decl: Declaration;
  loc: Loc;
}

export interface ConstDef {
  kind: 'const';
  name: string;
  value: Value;
  loc: Loc;
}

export interface ProcedureDef {
  name: string;
  number: Value;
  result: Declaration;
  args: Declaration[];
  loc: Loc;
}

export interface VersionDef {
  name: string;
  number: Value;
  procedures: ProcedureDef[];
  loc: Loc;
}

export interface ProgramDef {
  kind: 'program';
  name: string;
  number: Value;
  versions: VersionDef[];
  loc: Loc;
}

export type Definition = EnumDef | StructDef | UnionDef | TypedefDef | ConstDef | ProgramDef;

export interface Specification {
  file: string;
  definitions: Definition[];
  /** `%` lines, passed through by rpcgen into C output; kept here, not emitted. */
  passthrough: string[];
}
