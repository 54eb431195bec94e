/**
 * A few WebAssembly opcodes and the binary encodings needed to build small SIMD modules in code (no binary file
 * to ship). Browser-safe.
 */

// Opcodes.
export const I32 = 0x7f, F64 = 0x7c, V128 = 0x7b;
export const SIMD_PREFIX = 0xfd;
export const SIMD = SIMD_PREFIX;
export const BLOCK = 0x02, LOOP = 0x03, END = 0x0b, BR = 0x0c, BR_IF = 0x0d, VOID = 0x40;
export const LOCAL_GET = 0x20, LOCAL_SET = 0x21, I32_CONST = 0x41;
export const I32_ADD = 0x6a, I32_MUL = 0x6c, I32_SHL = 0x74, I32_GE_U = 0x4f, I32_GT_U = 0x4b, I32_LT_U = 0x49;
export const F64_ADD = 0xa0, F64_STORE = 0x39, F64_LOAD = 0x2b, I32_AND = 0x71, SELECT = 0x1b;
export const V128_STORE = [SIMD_PREFIX, 0x0b, 4, 0];
export const F64X2_SPLAT = [SIMD_PREFIX, 0x14];
export const V128_LOAD = [SIMD, 0x00, 4, 0];
export const V128_ZERO = [SIMD, 0x0c, ...new Array<number>(16).fill(0)];
export const F32X4_ADD = [SIMD, 0xe4, 0x01], F32X4_MUL = [SIMD, 0xe6, 0x01];
export const F64X2_ADD = [SIMD, 0xf0, 0x01], F64X2_MUL = [SIMD, 0xf2, 0x01], F64X2_PROMOTE_LOW = [SIMD, 0x5f];
export const HIGH_HALF = [SIMD, 0x0d, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]; // i8x16.shuffle
export const lane = (i: number) => [SIMD, 0x21, i]; // f64x2.extract_lane

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
export const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
export const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
export const str = (s: string) => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];

export const get = (i: number) => [LOCAL_GET, i];
export const set = (i: number) => [LOCAL_SET, i];
export const konst = (v: number) => [I32_CONST, ...sleb(v)];

/** A function body: `i32Locals` i32 locals, then `v128Locals` v128 locals (after the parameters), then the code. */
export function functionBody(i32Locals: number, v128Locals: number, code: number[]): number[] {
  const fn = [...vec([[...uleb(i32Locals), I32], [...uleb(v128Locals), V128]]), ...code];
  return [...uleb(fn.length), ...fn];
}
