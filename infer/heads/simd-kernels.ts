/**
 * The WebAssembly SIMD kernels of the logistic-regression head, as function bodies built from their opcodes, and
 * the module that holds them. Memory layout and calls live in simd.ts.
 *
 * - gram: X X^T of float32 rows (products and 32-column partial sums in float32, running sums in float64, entries
 *   good to about 1e-8 relative);
 * - scores / gradient: the two float64 products of each objective evaluation, F V^T and R^T F;
 * - colDots: the dot products of one Cholesky column step (float64);
 * - combine: W = A X, float64 coefficients times float32 rows, float64 sums;
 * - axpyDot: the fused sweep of the L-BFGS two-loop recursion (float64).
 */
import {
  BLOCK, BR, BR_IF, END, F32X4_ADD, F32X4_MUL, F64, F64_ADD, F64_LOAD, F64_STORE, F64X2_ADD, F64X2_MUL,
  F64X2_PROMOTE_LOW, F64X2_SPLAT, HIGH_HALF, I32, I32_ADD, I32_AND, I32_GE_U, I32_GT_U, I32_LT_U, I32_MUL,
  I32_SHL, LOOP, SELECT, SIMD, V128_LOAD, V128_STORE, V128_ZERO, VOID, functionBody, get, konst, lane,
  section, set, str, uleb, vec,
} from './wasm-asm.js';

/**
 * gram(x, n, d, g): x = byte offset of n rows of d float32 (n even, d a multiple of 32), g = byte offset of the
 * n x n float64 output. Fills the blocks on and below the diagonal, in 2 x 2 blocks (rows a, a+1 against b, b+1).
 */
function gramFunction(): number[] {
  // Locals: 0 x, 1 n, 2 d, 3 g (params); i32 4 a, 5 b, 6 c0, 7 c, 8 pa0, 9 pa1, 10 pb0, 11 pb1, 12 rowBytes,
  // 13 cend, 14 gaddr; v128 15-18 s00 s01 s10 s11 (f64x2 sums), 19-22 t00 t01 t10 t11 (f32x4 partial sums).
  const [x, n, d, g, a, b, c0, c, pa0, pa1, pb0, pb1, rowBytes, cend, gaddr] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
  const s = [15, 16, 17, 18], t = [19, 20, 21, 22];
  const pairs: [number, number][] = [[pa0, pb0], [pa0, pb1], [pa1, pb0], [pa1, pb1]];
  const body: number[] = [
    ...get(d), ...konst(2), I32_SHL, ...set(rowBytes),
    ...konst(0), ...set(a),
    BLOCK, VOID, LOOP, VOID,
    ...get(a), ...get(n), I32_GE_U, BR_IF, 1,
    ...get(x), ...get(a), ...get(rowBytes), I32_MUL, I32_ADD, ...set(pa0),
    ...get(pa0), ...get(rowBytes), I32_ADD, ...set(pa1),
    ...konst(0), ...set(b),
    BLOCK, VOID, LOOP, VOID,
    ...get(b), ...get(a), I32_GT_U, BR_IF, 1,
    ...get(x), ...get(b), ...get(rowBytes), I32_MUL, I32_ADD, ...set(pb0),
    ...get(pb0), ...get(rowBytes), I32_ADD, ...set(pb1),
    ...s.flatMap((i) => [...V128_ZERO, ...set(i)]),
    ...konst(0), ...set(c0),
    BLOCK, VOID, LOOP, VOID,
    ...get(c0), ...get(rowBytes), I32_GE_U, BR_IF, 1,
    ...t.flatMap((i) => [...V128_ZERO, ...set(i)]),
    ...get(c0), ...set(c),
    ...get(c0), ...konst(128), I32_ADD, ...set(cend),
    LOOP, VOID,
    ...pairs.flatMap(([p, q], k) => [
      ...get(t[k]!), ...get(p), ...get(c), I32_ADD, ...V128_LOAD, ...get(q), ...get(c), I32_ADD, ...V128_LOAD,
      ...F32X4_MUL, ...F32X4_ADD, ...set(t[k]!),
    ]),
    ...get(c), ...konst(16), I32_ADD, ...set(c),
    ...get(c), ...get(cend), I32_LT_U, BR_IF, 0,
    END,
    ...[0, 1, 2, 3].flatMap((k) => [
      ...get(s[k]!), ...get(t[k]!), ...F64X2_PROMOTE_LOW, ...F64X2_ADD,
      ...get(t[k]!), ...get(t[k]!), ...HIGH_HALF, ...F64X2_PROMOTE_LOW, ...F64X2_ADD, ...set(s[k]!),
    ]),
    ...get(c0), ...konst(128), I32_ADD, ...set(c0),
    BR, 0,
    END, END,
    // gaddr = g + (a*n + b) * 8; G[a][b], G[a][b+1]; then row a+1.
    ...get(g), ...get(a), ...get(n), I32_MUL, ...get(b), I32_ADD, ...konst(3), I32_SHL, I32_ADD, ...set(gaddr),
    ...get(gaddr), ...get(s[0]!), ...lane(0), ...get(s[0]!), ...lane(1), F64_ADD, F64_STORE, 3, 0,
    ...get(gaddr), ...get(s[1]!), ...lane(0), ...get(s[1]!), ...lane(1), F64_ADD, F64_STORE, 3, 8,
    ...get(gaddr), ...get(n), ...konst(3), I32_SHL, I32_ADD, ...set(gaddr),
    ...get(gaddr), ...get(s[2]!), ...lane(0), ...get(s[2]!), ...lane(1), F64_ADD, F64_STORE, 3, 0,
    ...get(gaddr), ...get(s[3]!), ...lane(0), ...get(s[3]!), ...lane(1), F64_ADD, F64_STORE, 3, 8,
    ...get(b), ...konst(2), I32_ADD, ...set(b),
    BR, 0,
    END, END,
    ...get(a), ...konst(2), I32_ADD, ...set(a),
    BR, 0,
    END, END,
    END,
  ];
  return functionBody(11, 8, body);
}



/**
 * Row length in bytes for the softmax kernels: P, or for a lower-triangular F min(P, (i + 2) & ~1), so that
 * the zeros above the diagonal are mostly skipped. Leaves lenBytes in local `lenBytes`.
 */
function rowLengthBytes(i: number, P: number, tri: number, tmp: number, lenBytes: number): number[] {
  return [
    ...get(i), ...konst(2), I32_ADD, ...konst(-2), I32_AND, ...set(tmp),
    ...get(tmp), ...get(P), ...get(tri), ...get(tmp), ...get(P), I32_LT_U, I32_AND, SELECT,
    ...konst(3), I32_SHL, ...set(lenBytes),
  ];
}

/**
 * scores(F, n, P, tri, V, K, Z): Z[i*K + k] = sum_c F[i*P + c] V[k*P + c] (float64; P and K even; rows of V
 * beyond the real classes and columns beyond the real width are zero).
 */
function scoresFunction(): number[] {
  const [F, n, P, tri, V, K, Z, i, k, c, lenBytes, rowF, v0, v1, rowBytes, zaddr, tmp] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
  const [acc0, acc1, f] = [17, 18, 19];
  const hsum = (acc: number) => [...get(acc), ...lane(0), ...get(acc), ...lane(1), F64_ADD];
  const body = [
    ...get(P), ...konst(3), I32_SHL, ...set(rowBytes),
    ...konst(0), ...set(i),
    BLOCK, VOID, LOOP, VOID,
    ...get(i), ...get(n), I32_GE_U, BR_IF, 1,
    ...rowLengthBytes(i, P, tri, tmp, lenBytes),
    ...get(F), ...get(i), ...get(rowBytes), I32_MUL, I32_ADD, ...set(rowF),
    ...konst(0), ...set(k),
    BLOCK, VOID, LOOP, VOID,
    ...get(k), ...get(K), I32_GE_U, BR_IF, 1,
    ...get(V), ...get(k), ...get(rowBytes), I32_MUL, I32_ADD, ...set(v0),
    ...get(v0), ...get(rowBytes), I32_ADD, ...set(v1),
    ...V128_ZERO, ...set(acc0), ...V128_ZERO, ...set(acc1),
    ...konst(0), ...set(c),
    LOOP, VOID,
    ...get(rowF), ...get(c), I32_ADD, ...V128_LOAD, ...set(f),
    ...get(acc0), ...get(f), ...get(v0), ...get(c), I32_ADD, ...V128_LOAD, ...F64X2_MUL, ...F64X2_ADD, ...set(acc0),
    ...get(acc1), ...get(f), ...get(v1), ...get(c), I32_ADD, ...V128_LOAD, ...F64X2_MUL, ...F64X2_ADD, ...set(acc1),
    ...get(c), ...konst(16), I32_ADD, ...set(c),
    ...get(c), ...get(lenBytes), I32_LT_U, BR_IF, 0,
    END,
    ...get(Z), ...get(i), ...get(K), I32_MUL, ...get(k), I32_ADD, ...konst(3), I32_SHL, I32_ADD, ...set(zaddr),
    ...get(zaddr), ...hsum(acc0), F64_STORE, 3, 0,
    ...get(zaddr), ...hsum(acc1), F64_STORE, 3, 8,
    ...get(k), ...konst(2), I32_ADD, ...set(k),
    BR, 0,
    END, END,
    ...get(i), ...konst(1), I32_ADD, ...set(i),
    BR, 0,
    END, END,
    END,
  ];
  return functionBody(10, 3, body);
}

/** gradient(F, n, P, tri, R, K, G): G (K x P) = R^T F with R n x K (float64; P and K even). */
function gradientFunction(): number[] {
  const [F, n, P, tri, R, K, G, i, k, c, lenBytes, rowF, g0, g1, rowBytes, raddr, total, tmp] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17];
  const [r0, r1, f] = [18, 19, 20];
  const axpy = (g: number, r: number) => [
    ...get(g), ...get(c), I32_ADD,
    ...get(g), ...get(c), I32_ADD, ...V128_LOAD, ...get(r), ...get(f), ...F64X2_MUL, ...F64X2_ADD,
    ...V128_STORE,
  ];
  const body = [
    ...get(P), ...konst(3), I32_SHL, ...set(rowBytes),
    ...get(K), ...get(rowBytes), I32_MUL, ...set(total),
    ...konst(0), ...set(c),
    LOOP, VOID,
    ...get(G), ...get(c), I32_ADD, ...V128_ZERO, ...V128_STORE,
    ...get(c), ...konst(16), I32_ADD, ...set(c),
    ...get(c), ...get(total), I32_LT_U, BR_IF, 0,
    END,
    ...konst(0), ...set(i),
    BLOCK, VOID, LOOP, VOID,
    ...get(i), ...get(n), I32_GE_U, BR_IF, 1,
    ...rowLengthBytes(i, P, tri, tmp, lenBytes),
    ...get(F), ...get(i), ...get(rowBytes), I32_MUL, I32_ADD, ...set(rowF),
    ...konst(0), ...set(k),
    BLOCK, VOID, LOOP, VOID,
    ...get(k), ...get(K), I32_GE_U, BR_IF, 1,
    ...get(R), ...get(i), ...get(K), I32_MUL, ...get(k), I32_ADD, ...konst(3), I32_SHL, I32_ADD, ...set(raddr),
    ...get(raddr), F64_LOAD, 3, 0, ...F64X2_SPLAT, ...set(r0),
    ...get(raddr), F64_LOAD, 3, 8, ...F64X2_SPLAT, ...set(r1),
    ...get(G), ...get(k), ...get(rowBytes), I32_MUL, I32_ADD, ...set(g0),
    ...get(g0), ...get(rowBytes), I32_ADD, ...set(g1),
    ...konst(0), ...set(c),
    LOOP, VOID,
    ...get(rowF), ...get(c), I32_ADD, ...V128_LOAD, ...set(f),
    ...axpy(g0, r0),
    ...axpy(g1, r1),
    ...get(c), ...konst(16), I32_ADD, ...set(c),
    ...get(c), ...get(lenBytes), I32_LT_U, BR_IF, 0,
    END,
    ...get(k), ...konst(2), I32_ADD, ...set(k),
    BR, 0,
    END, END,
    ...get(i), ...konst(1), I32_ADD, ...set(i),
    BR, 0,
    END, END,
    END,
  ];
  return functionBody(11, 3, body);
}

/**
 * colDots(L, rowBytes, lenBytes, rowK, i0, n, out): out[i] = sum over the first lenBytes / 8 entries of rows i and
 * k of L, for i0 <= i < n (float64; rows rowBytes apart; lenBytes a multiple of 32). The caller keeps the
 * entries past the columns already computed zero, so a rounded-up length adds nothing.
 */
function colDotsFunction(): number[] {
  const [L, rowBytes, lenBytes, rowK, i0, n, out, i, p, c] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const [acc0, acc1] = [10, 11];
  const madd = (acc: number, offset: number) => [
    ...get(acc), ...get(p), ...get(c), I32_ADD, SIMD, 0x00, 4, offset, ...get(rowK), ...get(c), I32_ADD, SIMD, 0x00, 4, offset,
    ...F64X2_MUL, ...F64X2_ADD, ...set(acc),
  ];
  return functionBody(3, 2, [
    ...get(i0), ...set(i),
    BLOCK, VOID, LOOP, VOID,
    ...get(i), ...get(n), I32_GE_U, BR_IF, 1,
    ...get(L), ...get(i), ...get(rowBytes), I32_MUL, I32_ADD, ...set(p),
    ...V128_ZERO, ...set(acc0), ...V128_ZERO, ...set(acc1),
    ...konst(0), ...set(c),
    BLOCK, VOID, LOOP, VOID,
    ...get(c), ...get(lenBytes), I32_GE_U, BR_IF, 1,
    ...madd(acc0, 0), ...madd(acc1, 16),
    ...get(c), ...konst(32), I32_ADD, ...set(c),
    BR, 0,
    END, END,
    ...get(acc0), ...get(acc1), ...F64X2_ADD, ...set(acc0),
    ...get(out), ...get(i), ...konst(3), I32_SHL, I32_ADD,
    ...get(acc0), ...lane(0), ...get(acc0), ...lane(1), F64_ADD, F64_STORE, 3, 0,
    ...get(i), ...konst(1), I32_ADD, ...set(i),
    BR, 0,
    END, END,
    END,
  ]);
}

/**
 * combine(x, n4, xRowBytes, A, K, W): W (K rows of xRowBytes / 4 float64) = A (K x n4, float64) times the n4 rows
 * of x (float32, xRowBytes apart; n4 a multiple of 4, xRowBytes of 16). Four rows of x per pass over a row of W.
 */
function combineFunction(): number[] {
  const [x, n4, xRowBytes, A, K, W, k, i, cb, x0, x1, x2, x3, wRow, aAddr, wAddr] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
  const [a0, a1, a2, a3, v, lo, hi] = [16, 17, 18, 19, 20, 21, 22];
  const rows = [x0, x1, x2, x3], coefs = [a0, a1, a2, a3];
  return functionBody(10, 7, [
    ...konst(0), ...set(k),
    BLOCK, VOID, LOOP, VOID,
    ...get(k), ...get(K), I32_GE_U, BR_IF, 1,
    ...get(W), ...get(k), ...get(xRowBytes), I32_MUL, ...konst(1), I32_SHL, I32_ADD, ...set(wRow),
    // Zero this row of W.
    ...konst(0), ...set(cb),
    BLOCK, VOID, LOOP, VOID,
    ...get(cb), ...get(xRowBytes), I32_GE_U, BR_IF, 1,
    ...get(wRow), ...get(cb), ...konst(1), I32_SHL, I32_ADD, ...set(wAddr),
    ...get(wAddr), ...V128_ZERO, ...V128_STORE,
    ...get(wAddr), ...V128_ZERO, SIMD, 0x0b, 4, 16,
    ...get(cb), ...konst(16), I32_ADD, ...set(cb),
    BR, 0,
    END, END,
    ...konst(0), ...set(i),
    BLOCK, VOID, LOOP, VOID,
    ...get(i), ...get(n4), I32_GE_U, BR_IF, 1,
    ...get(A), ...get(k), ...get(n4), I32_MUL, ...get(i), I32_ADD, ...konst(3), I32_SHL, I32_ADD, ...set(aAddr),
    ...coefs.flatMap((a, j) => [...get(aAddr), F64_LOAD, 3, j * 8, ...F64X2_SPLAT, ...set(a)]),
    ...get(x), ...get(i), ...get(xRowBytes), I32_MUL, I32_ADD, ...set(x0),
    ...get(x0), ...get(xRowBytes), I32_ADD, ...set(x1),
    ...get(x1), ...get(xRowBytes), I32_ADD, ...set(x2),
    ...get(x2), ...get(xRowBytes), I32_ADD, ...set(x3),
    ...konst(0), ...set(cb),
    BLOCK, VOID, LOOP, VOID,
    ...get(cb), ...get(xRowBytes), I32_GE_U, BR_IF, 1,
    ...get(wRow), ...get(cb), ...konst(1), I32_SHL, I32_ADD, ...set(wAddr),
    ...get(wAddr), ...V128_LOAD, ...set(lo),
    ...get(wAddr), SIMD, 0x00, 4, 16, ...set(hi),
    ...rows.flatMap((r, j) => [
      ...get(r), ...get(cb), I32_ADD, ...V128_LOAD, ...set(v),
      ...get(lo), ...get(coefs[j]!), ...get(v), ...F64X2_PROMOTE_LOW, ...F64X2_MUL, ...F64X2_ADD, ...set(lo),
      ...get(hi), ...get(coefs[j]!), ...get(v), ...get(v), ...HIGH_HALF, ...F64X2_PROMOTE_LOW, ...F64X2_MUL, ...F64X2_ADD, ...set(hi),
    ]),
    ...get(wAddr), ...get(lo), ...V128_STORE,
    ...get(wAddr), ...get(hi), SIMD, 0x0b, 4, 16,
    ...get(cb), ...konst(16), I32_ADD, ...set(cb),
    BR, 0,
    END, END,
    ...get(i), ...konst(4), I32_ADD, ...set(i),
    BR, 0,
    END, END,
    ...get(k), ...konst(1), I32_ADD, ...set(k),
    BR, 0,
    END, END,
    END,
  ]);
}

/**
 * axpyDot(D, P, Q, lenBytes, c) -> f64: D += c P, then returns Q . D (float64 vectors; lenBytes a multiple of 32).
 */
function axpyDotFunction(): number[] {
  const [D, P, Q, len, c, j] = [0, 1, 2, 3, 4, 5];
  const [cv, acc0, acc1, v] = [6, 7, 8, 9];
  const step = (acc: number, offset: number) => [
    ...get(D), ...get(j), I32_ADD, SIMD, 0x00, 4, offset,
    ...get(cv), ...get(P), ...get(j), I32_ADD, SIMD, 0x00, 4, offset, ...F64X2_MUL, ...F64X2_ADD, ...set(v),
    ...get(D), ...get(j), I32_ADD, ...get(v), SIMD, 0x0b, 4, offset,
    ...get(acc), ...get(Q), ...get(j), I32_ADD, SIMD, 0x00, 4, offset, ...get(v), ...F64X2_MUL, ...F64X2_ADD, ...set(acc),
  ];
  return functionBody(1, 4, [
    ...get(c), ...F64X2_SPLAT, ...set(cv),
    ...V128_ZERO, ...set(acc0), ...V128_ZERO, ...set(acc1),
    ...konst(0), ...set(j),
    BLOCK, VOID, LOOP, VOID,
    ...get(j), ...get(len), I32_GE_U, BR_IF, 1,
    ...step(acc0, 0), ...step(acc1, 16),
    ...get(j), ...konst(32), I32_ADD, ...set(j),
    BR, 0,
    END, END,
    ...get(acc0), ...get(acc1), ...F64X2_ADD, ...set(acc0),
    ...get(acc0), ...lane(0), ...get(acc0), ...lane(1), F64_ADD,
    END,
  ]);
}

/** The module: exports gram, scores, gradient, colDots, combine, axpyDot and its memory. */
export function buildModule(): Uint8Array {
  const i32s = (count: number) => Array.from({ length: count }, () => [I32]);
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([
      [0x60, ...vec(i32s(4)), ...vec([])],
      [0x60, ...vec(i32s(7)), ...vec([])],
      [0x60, ...vec(i32s(6)), ...vec([])],
      [0x60, ...vec([...i32s(4), [F64]]), ...vec([[F64]])],
    ])),
    ...section(3, vec([[0], [1], [1], [1], [2], [3]])),
    ...section(5, vec([[0x00, ...uleb(16)]])),
    ...section(7, vec([
      [...str('gram'), 0x00, 0], [...str('scores'), 0x00, 1], [...str('gradient'), 0x00, 2],
      [...str('colDots'), 0x00, 3], [...str('combine'), 0x00, 4], [...str('axpyDot'), 0x00, 5], [...str('memory'), 0x02, 0],
    ])),
    ...section(10, vec([gramFunction(), scoresFunction(), gradientFunction(), colDotsFunction(), combineFunction(), axpyDotFunction()])),
  ];
  return Uint8Array.from(bytes);
}
