/**
 * The WebAssembly SIMD kernels of the logistic-regression head, written with wasm-asm's builders, and the module
 * that holds them. Memory ownership and calls live in simd.ts.
 *
 * - gram: X X^T of float32 rows (products and 32-column partial sums in float32, running sums in float64, entries
 *   good to about 1e-8 relative);
 * - scores / gradient: the two float64 products of each objective evaluation, F V^T and R^T F;
 * - colDots: the dot products of one Cholesky column step (float64);
 * - combine: W = A X, float64 coefficients times float32 rows, float64 sums;
 * - axpyDot: the fused sweep of the L-BFGS two-loop recursion (float64).
 */
import {
  F32X4_ADD, F32X4_MUL, F64, F64X2_ADD, F64X2_MUL, F64X2_PROMOTE_LOW, F64X2_SPLAT, HIGH_HALF, I32, I32_ADD, I32_AND,
  I32_LT_U, I32_MUL, I32_SHL, SELECT, V128, V128_ZERO, WasmFunction, add, assign, doWhileLoop, encodeModule, f64Entry,
  f64Load, f64Store, forLoop, get, konst, laneSum, rowAddress, set, v128Load, v128Store, type Local,
} from './wasm-asm.js';

/** Initial size of a kernel instance's memory, in 64 KiB pages (a 5-way 5-shot x5 fit at 640-d needs under 1 MiB). */
const INITIAL_PAGES = 16;

/** a + b * c (vectors: the multiply-add of the float64 kernels). */
const fma64 = (acc: number[], b: number[], c: number[]) => [...acc, ...b, ...c, ...F64X2_MUL, ...F64X2_ADD];
/** The i32 value of a local shifted left by `bits`. */
const shl = (l: Local, bits: number) => [...get(l), ...konst(bits), I32_SHL];

/**
 * gram(x, n, d, g): x = byte offset of n rows of d float32 (n even, d a multiple of 32), g = byte offset of the
 * n x n float64 output. Fills the blocks on and below the diagonal, in 2 x 2 blocks (rows a, a+1 against b, b+1).
 */
function gramFunction(): WasmFunction {
  const f = new WasmFunction();
  const { x, n, d, g } = f.params(I32, 'x', 'n', 'd', 'g');
  const { a, b, c0, c, pa0, pa1, pb0, pb1, rowBytes, cend, gaddr } =
    f.locals(I32, 'a', 'b', 'c0', 'c', 'pa0', 'pa1', 'pb0', 'pb1', 'rowBytes', 'cend', 'gaddr');
  // s: float64x2 running sums of the four products; t: float32x4 partial sums over 32 columns.
  const { s00, s01, s10, s11 } = f.locals(V128, 's00', 's01', 's10', 's11');
  const { t00, t01, t10, t11 } = f.locals(V128, 't00', 't01', 't10', 't11');
  const blocks: [Local, Local, Local, Local][] = [[s00, t00, pa0, pb0], [s01, t01, pa0, pb1], [s10, t10, pa1, pb0], [s11, t11, pa1, pb1]];
  const partialSums = doWhileLoop(c, null, get(cend), 16, blocks.flatMap(([, t, p, q]) => assign(
    [t, [...get(t), ...v128Load(add(p, c)), ...v128Load(add(q, c)), ...F32X4_MUL, ...F32X4_ADD]],
  )));
  const columns = forLoop(c0, konst(0), get(rowBytes), 128, [
    ...blocks.flatMap(([, t]) => assign([t, V128_ZERO])),
    ...assign([c, get(c0)], [cend, add(c0, konst(128))]),
    ...partialSums,
    ...blocks.flatMap(([s, t]) => assign([s, [
      ...get(s), ...get(t), ...F64X2_PROMOTE_LOW, ...F64X2_ADD,
      ...get(t), ...get(t), ...HIGH_HALF, ...F64X2_PROMOTE_LOW, ...F64X2_ADD,
    ]])),
  ]);
  f.body = [
    ...assign([rowBytes, shl(d, 2)]),
    ...forLoop(a, konst(0), get(n), 2, [
      ...assign([pa0, rowAddress(x, a, rowBytes)], [pa1, add(pa0, rowBytes)]),
      ...forLoop(b, konst(0), get(a), 2, [
        ...assign([pb0, rowAddress(x, b, rowBytes)], [pb1, add(pb0, rowBytes)]),
        ...blocks.flatMap(([s]) => assign([s, V128_ZERO])),
        ...columns,
        // G[a][b], G[a][b+1]; then row a+1.
        ...assign([gaddr, f64Entry(g, a, n, b)]),
        ...f64Store(gaddr, laneSum(s00)), ...f64Store(gaddr, laneSum(s01), 8),
        ...assign([gaddr, add(gaddr, shl(n, 3))]),
        ...f64Store(gaddr, laneSum(s10)), ...f64Store(gaddr, laneSum(s11), 8),
      ], true),
    ]),
  ];
  return f;
}

/**
 * Row length in bytes for the softmax kernels: P, or for a lower-triangular F min(P, (i + 2) & ~1), so that
 * the zeros above the diagonal are mostly skipped.
 */
function rowLengthBytes(i: Local, P: Local, tri: Local, tmp: Local, lenBytes: Local): number[] {
  return assign(
    [tmp, [...get(i), ...konst(2), I32_ADD, ...konst(-2), I32_AND]],
    [lenBytes, [...get(tmp), ...get(P), ...get(tri), ...get(tmp), ...get(P), I32_LT_U, I32_AND, SELECT, ...konst(3), I32_SHL]],
  );
}

/** The parameters shared by scores and gradient: F (n x P), its triangular flag, the n x K matrix M and the output. */
function softmaxProductFunction(matrixName: 'V' | 'R') {
  const f = new WasmFunction();
  const p = f.params(I32, 'F', 'n', 'P', 'tri', matrixName, 'K', 'out');
  return { f, ...p, M: (p as Record<string, Local>)[matrixName]! };
}

/**
 * scores(F, n, P, tri, V, K, Z): Z[i*K + k] = sum_c F[i*P + c] V[k*P + c] (float64; P and K even; rows of V
 * beyond the real classes and columns beyond the real width are zero).
 */
function scoresFunction(): WasmFunction {
  const { f, F, n, P, tri, M: V, K, out: Z } = softmaxProductFunction('V');
  const { i, k, c, lenBytes, rowF, v0, v1, rowBytes, zaddr, tmp } = f.locals(I32, 'i', 'k', 'c', 'lenBytes', 'rowF', 'v0', 'v1', 'rowBytes', 'zaddr', 'tmp');
  const { acc0, acc1, x } = f.locals(V128, 'acc0', 'acc1', 'x');
  f.body = [
    ...assign([rowBytes, shl(P, 3)]),
    ...forLoop(i, konst(0), get(n), 1, [
      ...rowLengthBytes(i, P, tri, tmp, lenBytes),
      ...assign([rowF, rowAddress(F, i, rowBytes)]),
      ...forLoop(k, konst(0), get(K), 2, [
        ...assign([v0, rowAddress(V, k, rowBytes)], [v1, add(v0, rowBytes)], [acc0, V128_ZERO], [acc1, V128_ZERO]),
        ...doWhileLoop(c, konst(0), get(lenBytes), 16, assign(
          [x, v128Load(add(rowF, c))],
          [acc0, fma64(get(acc0), get(x), v128Load(add(v0, c)))],
          [acc1, fma64(get(acc1), get(x), v128Load(add(v1, c)))],
        )),
        ...assign([zaddr, f64Entry(Z, i, K, k)]),
        ...f64Store(zaddr, laneSum(acc0)), ...f64Store(zaddr, laneSum(acc1), 8),
      ]),
    ]),
  ];
  return f;
}

/** gradient(F, n, P, tri, R, K, G): G (K x P) = R^T F with R n x K (float64; P and K even). */
function gradientFunction(): WasmFunction {
  const { f, F, n, P, tri, M: R, K, out: G } = softmaxProductFunction('R');
  const { i, k, c, lenBytes, rowF, g0, g1, rowBytes, raddr, total, tmp } =
    f.locals(I32, 'i', 'k', 'c', 'lenBytes', 'rowF', 'g0', 'g1', 'rowBytes', 'raddr', 'total', 'tmp');
  const { r0, r1, x } = f.locals(V128, 'r0', 'r1', 'x');
  const axpy = (g: Local, r: Local) => v128Store(add(g, c), fma64(v128Load(add(g, c)), get(r), get(x)));
  f.body = [
    ...assign([rowBytes, shl(P, 3)], [total, [...get(K), ...get(rowBytes), I32_MUL]]),
    ...doWhileLoop(c, konst(0), get(total), 16, v128Store(add(G, c), V128_ZERO)),
    ...forLoop(i, konst(0), get(n), 1, [
      ...rowLengthBytes(i, P, tri, tmp, lenBytes),
      ...assign([rowF, rowAddress(F, i, rowBytes)]),
      ...forLoop(k, konst(0), get(K), 2, [
        ...assign(
          [raddr, f64Entry(R, i, K, k)],
          [r0, [...f64Load(raddr), ...F64X2_SPLAT]],
          [r1, [...f64Load(raddr, 8), ...F64X2_SPLAT]],
          [g0, rowAddress(G, k, rowBytes)],
          [g1, add(g0, rowBytes)],
        ),
        ...doWhileLoop(c, konst(0), get(lenBytes), 16, [...assign([x, v128Load(add(rowF, c))]), ...axpy(g0, r0), ...axpy(g1, r1)]),
      ]),
    ]),
  ];
  return f;
}

/**
 * colDots(L, rowBytes, lenBytes, rowK, i0, n, out): out[i] = sum over the first lenBytes / 8 entries of rows i and
 * k of L, for i0 <= i < n (float64; rows rowBytes apart; lenBytes a multiple of 32). The caller keeps the
 * entries past the columns already computed zero, so a rounded-up length adds nothing.
 */
function colDotsFunction(): WasmFunction {
  const f = new WasmFunction();
  const { L, rowBytes, lenBytes, rowK, i0, n, out } = f.params(I32, 'L', 'rowBytes', 'lenBytes', 'rowK', 'i0', 'n', 'out');
  const { i, p, c } = f.locals(I32, 'i', 'p', 'c');
  const { acc0, acc1 } = f.locals(V128, 'acc0', 'acc1');
  const madd = (acc: Local, offset: number) => assign([acc, fma64(get(acc), v128Load(add(p, c), offset), v128Load(add(rowK, c), offset))]);
  f.body = forLoop(i, get(i0), get(n), 1, [
    ...assign([p, rowAddress(L, i, rowBytes)], [acc0, V128_ZERO], [acc1, V128_ZERO]),
    ...forLoop(c, konst(0), get(lenBytes), 32, [...madd(acc0, 0), ...madd(acc1, 16)]),
    ...assign([acc0, [...get(acc0), ...get(acc1), ...F64X2_ADD]]),
    ...f64Store(add(out, shl(i, 3)), laneSum(acc0)),
  ]);
  return f;
}

/**
 * combine(x, n4, xRowBytes, A, K, W): W (K rows of xRowBytes / 4 float64) = A (K x n4, float64) times the n4 rows
 * of x (float32, xRowBytes apart; n4 a multiple of 4, xRowBytes of 16). Four rows of x per pass over a row of W.
 */
function combineFunction(): WasmFunction {
  const f = new WasmFunction();
  const { x, n4, xRowBytes, A, K, W } = f.params(I32, 'x', 'n4', 'xRowBytes', 'A', 'K', 'W');
  const { k, i, cb, x0, x1, x2, x3, wRow, aAddr, wAddr } = f.locals(I32, 'k', 'i', 'cb', 'x0', 'x1', 'x2', 'x3', 'wRow', 'aAddr', 'wAddr');
  const { a0, a1, a2, a3, v, lo, hi } = f.locals(V128, 'a0', 'a1', 'a2', 'a3', 'v', 'lo', 'hi');
  const rows = [x0, x1, x2, x3], coefs = [a0, a1, a2, a3];
  // W rows hold float64, twice the bytes of the float32 columns cb.
  const wAddress = assign([wAddr, add(wRow, shl(cb, 1))]);
  f.body = forLoop(k, konst(0), get(K), 1, [
    ...assign([wRow, [...get(W), ...get(k), ...get(xRowBytes), I32_MUL, ...konst(1), I32_SHL, I32_ADD]]),
    ...forLoop(cb, konst(0), get(xRowBytes), 16, [...wAddress, ...v128Store(wAddr, V128_ZERO), ...v128Store(wAddr, V128_ZERO, 16)]),
    ...forLoop(i, konst(0), get(n4), 4, [
      ...assign([aAddr, f64Entry(A, k, n4, i)]),
      ...coefs.flatMap((a, j) => assign([a, [...f64Load(aAddr, j * 8), ...F64X2_SPLAT]])),
      ...assign([x0, rowAddress(x, i, xRowBytes)], [x1, add(x0, xRowBytes)], [x2, add(x1, xRowBytes)], [x3, add(x2, xRowBytes)]),
      ...forLoop(cb, konst(0), get(xRowBytes), 16, [
        ...wAddress,
        ...assign([lo, v128Load(wAddr)], [hi, v128Load(wAddr, 16)]),
        ...rows.flatMap((r, j) => assign(
          [v, v128Load(add(r, cb))],
          [lo, fma64(get(lo), get(coefs[j]!), [...get(v), ...F64X2_PROMOTE_LOW])],
          [hi, fma64(get(hi), get(coefs[j]!), [...get(v), ...get(v), ...HIGH_HALF, ...F64X2_PROMOTE_LOW])],
        )),
        ...v128Store(wAddr, get(lo)), ...v128Store(wAddr, get(hi), 16),
      ]),
    ]),
  ]);
  return f;
}

/**
 * axpyDot(D, P, Q, lenBytes, c) -> f64: D += c P, then returns Q . D (float64 vectors; lenBytes a multiple of 32).
 */
function axpyDotFunction(): WasmFunction {
  const f = new WasmFunction([F64]);
  const { D, P, Q, len } = f.params(I32, 'D', 'P', 'Q', 'len');
  const { c } = f.params(F64, 'c');
  const { j } = f.locals(I32, 'j');
  const { cv, acc0, acc1, v } = f.locals(V128, 'cv', 'acc0', 'acc1', 'v');
  const step = (acc: Local, offset: number) => [
    ...assign([v, fma64(v128Load(add(D, j), offset), get(cv), v128Load(add(P, j), offset))]),
    ...v128Store(add(D, j), get(v), offset),
    ...assign([acc, fma64(get(acc), v128Load(add(Q, j), offset), get(v))]),
  ];
  f.body = [
    ...assign([cv, [...get(c), ...F64X2_SPLAT]], [acc0, V128_ZERO], [acc1, V128_ZERO]),
    ...forLoop(j, konst(0), get(len), 32, [...step(acc0, 0), ...step(acc1, 16)]),
    ...assign([acc0, [...get(acc0), ...get(acc1), ...F64X2_ADD]]),
    ...laneSum(acc0),
  ];
  return f;
}

/** The exports of the module (besides its memory), with their argument lists. */
export interface KernelExports {
  gram(x: number, n: number, d: number, g: number): void;
  scores(F: number, n: number, P: number, tri: number, V: number, K: number, Z: number): void;
  gradient(F: number, n: number, P: number, tri: number, R: number, K: number, G: number): void;
  colDots(L: number, rowBytes: number, lenBytes: number, rowK: number, i0: number, n: number, out: number): void;
  combine(x: number, n4: number, xRowBytes: number, A: number, K: number, W: number): void;
  axpyDot(D: number, P: number, Q: number, lenBytes: number, c: number): number;
  memory: WebAssembly.Memory;
}

/** The module: exports gram, scores, gradient, colDots, combine, axpyDot and its memory. */
export function buildModule(): Uint8Array {
  const functions: Record<Exclude<keyof KernelExports, 'memory'>, WasmFunction> = {
    gram: gramFunction(), scores: scoresFunction(), gradient: gradientFunction(),
    colDots: colDotsFunction(), combine: combineFunction(), axpyDot: axpyDotFunction(),
  };
  return encodeModule(functions, INITIAL_PAGES);
}
