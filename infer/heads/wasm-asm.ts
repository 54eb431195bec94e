/**
 * A small assembler for WebAssembly SIMD modules built in code (no binary file to ship): the opcodes the heads'
 * kernels use, functions whose parameters and locals are declared by name, the loop skeletons and memory accesses
 * the kernels repeat, and the module encoding (types, exports and memory). Browser-safe.
 */

// Value types and opcodes.
export const I32 = 0x7f, F64 = 0x7c, V128 = 0x7b;
export type ValueType = typeof I32 | typeof F64 | typeof V128;
const SIMD = 0xfd;
const BLOCK = 0x02, LOOP = 0x03, END = 0x0b, BR = 0x0c, BR_IF = 0x0d, VOID = 0x40;
const LOCAL_GET = 0x20, LOCAL_SET = 0x21, I32_CONST = 0x41;
export const I32_ADD = 0x6a, I32_MUL = 0x6c, I32_SHL = 0x74, I32_GE_U = 0x4f, I32_GT_U = 0x4b, I32_LT_U = 0x49;
export const I32_AND = 0x71, SELECT = 0x1b, F64_ADD = 0xa0;
const F64_LOAD = 0x2b, F64_STORE = 0x39;
export const V128_ZERO = [SIMD, 0x0c, ...new Array<number>(16).fill(0)];
export const F64X2_SPLAT = [SIMD, 0x14];
export const F32X4_ADD = [SIMD, 0xe4, 0x01], F32X4_MUL = [SIMD, 0xe6, 0x01];
export const F64X2_ADD = [SIMD, 0xf0, 0x01], F64X2_MUL = [SIMD, 0xf2, 0x01], F64X2_PROMOTE_LOW = [SIMD, 0x5f];
/** i8x16.shuffle moving the high 8 bytes of a vector to both halves. */
export const HIGH_HALF = [SIMD, 0x0d, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
/** f64x2.extract_lane. */
export const lane = (i: number) => [SIMD, 0x21, i];

export function uleb(v: number): number[] {
  const out: number[] = [];
  do { let b = v & 0x7f; v >>>= 7; if (v) b |= 0x80; out.push(b); } while (v);
  return out;
}
export function sleb(v: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = v & 0x7f; v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) { out.push(b); return out; }
    out.push(b | 0x80);
  }
}
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const str = (s: string) => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];

/** A parameter or local of a function, by its index and type. */
export interface Local { readonly index: number; readonly type: ValueType }

export const get = (l: Local) => [LOCAL_GET, ...uleb(l.index)];
export const set = (l: Local) => [LOCAL_SET, ...uleb(l.index)];
export const konst = (v: number) => [I32_CONST, ...sleb(v)];
/** The i32 sum of two operands (each a code sequence or a local). */
export const add = (a: Local | number[], b: Local | number[]) => [...operand(a), ...operand(b), I32_ADD];
/** base + row * rowBytes (i32). */
export const rowAddress = (base: Local, row: Local, rowBytes: Local) => [...get(base), ...get(row), ...get(rowBytes), I32_MUL, I32_ADD];
/** base + (row * rowLength + column) * 8: the byte address of a float64 matrix entry. */
export const f64Entry = (base: Local, row: Local, rowLength: Local, column: Local) =>
  [...get(base), ...get(row), ...get(rowLength), I32_MUL, ...get(column), I32_ADD, ...konst(3), I32_SHL, I32_ADD];
/** The sum of the two float64 lanes of a vector. */
export const laneSum = (v: Local) => [...get(v), ...lane(0), ...get(v), ...lane(1), F64_ADD];

function operand(x: Local | number[]): number[] {
  return Array.isArray(x) ? x : get(x);
}

// Memory accesses: the address is a code sequence (or a local); `offset` is the constant byte offset added to it.
export const v128Load = (address: Local | number[], offset = 0) => [...operand(address), SIMD, 0x00, 4, ...uleb(offset)];
export const v128Store = (address: Local | number[], value: number[], offset = 0) => [...operand(address), ...value, SIMD, 0x0b, 4, ...uleb(offset)];
export const f64Load = (address: Local | number[], offset = 0) => [...operand(address), F64_LOAD, 3, ...uleb(offset)];
export const f64Store = (address: Local | number[], value: number[], offset = 0) => [...operand(address), ...value, F64_STORE, 3, ...uleb(offset)];

/** `target = value`, for several assignments in order. */
export function assign(...pairs: [Local, number[]][]): number[] {
  return pairs.flatMap(([target, value]) => [...value, ...set(target)]);
}

/**
 * for (i = from; i < to; i += step) body — `to` is evaluated before every pass (so it may be a local that changes).
 * With `inclusive`, the loop runs while i <= to.
 */
export function forLoop(i: Local, from: number[], to: number[], step: number, body: number[], inclusive = false): number[] {
  return [
    ...from, ...set(i),
    BLOCK, VOID, LOOP, VOID,
    ...get(i), ...to, inclusive ? I32_GT_U : I32_GE_U, BR_IF, 1,
    ...body,
    ...get(i), ...konst(step), I32_ADD, ...set(i),
    BR, 0,
    END, END,
  ];
}

/**
 * i = from; do { body; i += step } while (i < to) — for loops known to run at least once (no test before the first
 * pass). `from` null: i is already set.
 */
export function doWhileLoop(i: Local, from: number[] | null, to: number[], step: number, body: number[]): number[] {
  return [
    ...(from ? [...from, ...set(i)] : []),
    LOOP, VOID,
    ...body,
    ...get(i), ...konst(step), I32_ADD, ...set(i),
    ...get(i), ...to, I32_LT_U, BR_IF, 0,
    END,
  ];
}

/**
 * A function under construction: parameters, then locals, declared by name and numbered in declaration order.
 *
 *     const f = new WasmFunction();
 *     const { x, n } = f.params(I32, 'x', 'n');
 *     const { acc } = f.locals(V128, 'acc');
 *     f.body = [...];
 */
export class WasmFunction {
  private readonly paramTypes: ValueType[] = [];
  private readonly localTypes: ValueType[] = [];
  /** The code (without the final `end`). */
  body: number[] = [];

  constructor(readonly results: ValueType[] = []) {}

  params<N extends string>(type: ValueType, ...names: N[]): Record<N, Local> {
    if (this.localTypes.length > 0) throw new Error('wasm-asm: declare the parameters before the locals');
    return this.declare(this.paramTypes, 0, type, names);
  }

  locals<N extends string>(type: ValueType, ...names: N[]): Record<N, Local> {
    return this.declare(this.localTypes, this.paramTypes.length, type, names);
  }

  private declare<N extends string>(list: ValueType[], base: number, type: ValueType, names: N[]): Record<N, Local> {
    const out = {} as Record<N, Local>;
    for (const name of names) {
      if (name in out) throw new Error(`wasm-asm: local '${name}' declared twice`);
      out[name] = { index: base + list.length, type };
      list.push(type);
    }
    return out;
  }

  /** The function type, as the type section encodes it. */
  signature(): number[] {
    return [0x60, ...vec(this.paramTypes.map((t) => [t])), ...vec(this.results.map((t) => [t]))];
  }

  /** The code section entry: local declarations (runs of one type), the code, `end`. */
  encode(): number[] {
    const runs: number[][] = [];
    for (let i = 0; i < this.localTypes.length;) {
      let j = i;
      while (j < this.localTypes.length && this.localTypes[j] === this.localTypes[i]) j++;
      runs.push([...uleb(j - i), this.localTypes[i]!]);
      i = j;
    }
    const fn = [...vec(runs), ...this.body, END];
    return [...uleb(fn.length), ...fn];
  }
}

/** A module of exported functions and one exported memory named `memory` (`pages` of 64 KiB to start with). */
export function encodeModule(functions: Record<string, WasmFunction>, pages: number): Uint8Array {
  const entries = Object.entries(functions);
  const types: string[] = [];
  const typeOf = entries.map(([, f]) => {
    const key = f.signature().join(',');
    if (!types.includes(key)) types.push(key);
    return types.indexOf(key);
  });
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types.map((t) => t.split(',').map(Number)))),
    ...section(3, vec(typeOf.map((t) => uleb(t)))),
    ...section(5, vec([[0x00, ...uleb(pages)]])),
    ...section(7, vec([
      ...entries.map(([name], i) => [...str(name), 0x00, ...uleb(i)]),
      [...str('memory'), 0x02, 0],
    ])),
    ...section(10, vec(entries.map(([, f]) => f.encode()))),
  ];
  return Uint8Array.from(bytes);
}
