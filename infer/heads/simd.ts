/**
 * WebAssembly SIMD kernels for the logistic-regression head, built here from their opcodes (no binary file to
 * ship): the Gram matrix X X^T of float32 rows (products and 32-column partial sums in float32, running sums in
 * float64, entries good to about 1e-8 relative), and the two float64 products of each objective evaluation,
 * scores F V^T and gradient R^T F. Several times faster than the scalar loops. Where WebAssembly SIMD is
 * unavailable the functions return false / null and the caller uses its scalar loops. Browser-safe.
 */

// Opcodes used below.
const I32 = 0x7f, F64 = 0x7c, V128 = 0x7b;
const SIMD_PREFIX = 0xfd;
const SIMD = SIMD_PREFIX;
const BLOCK = 0x02, LOOP = 0x03, END = 0x0b, BR = 0x0c, BR_IF = 0x0d, VOID = 0x40;
const LOCAL_GET = 0x20, LOCAL_SET = 0x21, I32_CONST = 0x41;
const I32_ADD = 0x6a, I32_MUL = 0x6c, I32_SHL = 0x74, I32_GE_U = 0x4f, I32_GT_U = 0x4b, I32_LT_U = 0x49;
const F64_ADD = 0xa0, F64_STORE = 0x39, F64_LOAD = 0x2b, I32_AND = 0x71, SELECT = 0x1b;
const V128_STORE = [SIMD_PREFIX, 0x0b, 4, 0];
const F64X2_SPLAT = [SIMD_PREFIX, 0x14];
const V128_LOAD = [SIMD, 0x00, 4, 0];
const V128_ZERO = [SIMD, 0x0c, ...new Array<number>(16).fill(0)];
const F32X4_ADD = [SIMD, 0xe4, 0x01], F32X4_MUL = [SIMD, 0xe6, 0x01];
const F64X2_ADD = [SIMD, 0xf0, 0x01], F64X2_MUL = [SIMD, 0xf2, 0x01], F64X2_PROMOTE_LOW = [SIMD, 0x5f];
const HIGH_HALF = [SIMD, 0x0d, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]; // i8x16.shuffle
const lane = (i: number) => [SIMD, 0x21, i]; // f64x2.extract_lane

function uleb(v: number): number[] {
  const out: number[] = [];
  do { let b = v & 0x7f; v >>>= 7; if (v) b |= 0x80; out.push(b); } while (v);
  return out;
}
function sleb(v: number): number[] {
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

/**
 * gram(x, n, d, g): x = byte offset of n rows of d float32 (n even, d a multiple of 32), g = byte offset of the
 * n x n float64 output. Fills the blocks on and below the diagonal, in 2 x 2 blocks (rows a, a+1 against b, b+1).
 */
function gramFunction(): number[] {
  // Locals: 0 x, 1 n, 2 d, 3 g (params); i32 4 a, 5 b, 6 c0, 7 c, 8 pa0, 9 pa1, 10 pb0, 11 pb1, 12 rowBytes,
  // 13 cend, 14 gaddr; v128 15-18 s00 s01 s10 s11 (f64x2 sums), 19-22 t00 t01 t10 t11 (f32x4 partial sums).
  const [x, n, d, g, a, b, c0, c, pa0, pa1, pb0, pb1, rowBytes, cend, gaddr] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
  const s = [15, 16, 17, 18], t = [19, 20, 21, 22];
  const get = (i: number) => [LOCAL_GET, i];
  const set = (i: number) => [LOCAL_SET, i];
  const konst = (v: number) => [I32_CONST, ...sleb(v)];
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
  const locals = vec([[...uleb(11), I32], [...uleb(8), V128]]);
  const fn = [...locals, ...body];
  return [...uleb(fn.length), ...fn];
}


const get = (i: number) => [LOCAL_GET, i];
const set = (i: number) => [LOCAL_SET, i];
const konst = (v: number) => [I32_CONST, ...sleb(v)];

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
  const fn = [...vec([[...uleb(10), I32], [...uleb(3), V128]]), ...body];
  return [...uleb(fn.length), ...fn];
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
  const fn = [...vec([[...uleb(11), I32], [...uleb(3), V128]]), ...body];
  return [...uleb(fn.length), ...fn];
}

function buildModule(): Uint8Array {
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([
      [0x60, ...vec([[I32], [I32], [I32], [I32]]), ...vec([])],
      [0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [I32], [I32]]), ...vec([])],
    ])),
    ...section(3, vec([[0], [1], [1]])),
    ...section(5, vec([[0x00, ...uleb(16)]])),
    ...section(7, vec([[...str('gram'), 0x00, 0], [...str('scores'), 0x00, 1], [...str('gradient'), 0x00, 2], [...str('memory'), 0x02, 0]])),
    ...section(10, vec([gramFunction(), scoresFunction(), gradientFunction()])),
  ];
  return Uint8Array.from(bytes);
}

type Kernel7 = (a: number, b: number, c: number, d: number, e: number, f: number, g: number) => void;
interface GramKernel { gram: (x: number, n: number, d: number, g: number) => void; scores: Kernel7; gradient: Kernel7; memory: WebAssembly.Memory }
let kernel: GramKernel | null | undefined;

function loadKernel(): GramKernel | null {
  if (kernel !== undefined) return kernel;
  kernel = null;
  try {
    if (typeof WebAssembly === 'object') {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(buildModule() as BufferSource), {});
      kernel = instance.exports as unknown as GramKernel;
    }
  } catch {
    kernel = null; // no SIMD support: callers fall back to scalar code
  }
  return kernel;
}

/** Whether the SIMD kernel is available (false, say, in an engine without WebAssembly SIMD). */
export function simdAvailable(): boolean {
  return loadKernel() !== null;
}

/**
 * Writes X X^T of the n rows of x (n x d, row-major) into G (n x n, both triangles). Returns false, doing nothing,
 * when the SIMD kernel is unavailable.
 */
export function simdGram(x: Float32Array, n: number, d: number, G: Float64Array): boolean {
  const k = loadKernel();
  if (!k) return false;
  const nPad = n + (n % 2);
  const dPad = Math.ceil(d / 32) * 32;
  const xBytes = nPad * dPad * 4;
  const need = xBytes + nPad * nPad * 8;
  const pages = Math.ceil(need / 65536);
  const have = k.memory.buffer.byteLength / 65536;
  if (pages > have) k.memory.grow(pages - have);
  const mem = new Float32Array(k.memory.buffer, 0, nPad * dPad);
  if (dPad === d) {
    mem.set(x.subarray(0, n * d));
  } else {
    for (let i = 0; i < n; i++) mem.set(x.subarray(i * d, (i + 1) * d), i * dPad);
    for (let i = 0; i < n; i++) mem.fill(0, i * dPad + d, (i + 1) * dPad);
  }
  if (nPad !== n) mem.fill(0, n * dPad, nPad * dPad);
  k.gram(0, nPad, dPad, xBytes);
  const out = new Float64Array(k.memory.buffer, xBytes, nPad * nPad);
  for (let a = 0; a < n; a++) {
    for (let b = 0; b <= a; b++) {
      const v = out[a * nPad + b]!;
      G[a * n + b] = v;
      G[b * n + a] = v;
    }
  }
  return true;
}

/**
 * Scores and gradient of the softmax objective for a fixed n x p design matrix F, in WebAssembly SIMD (float64).
 * The design is copied once into the kernel's memory, padded to an even width P; each evaluation copies V in and
 * the gradient out. Returns null when the kernel is unavailable.
 */
export class SimdSoftmaxProducts {
  private constructor(
    private readonly k: GramKernel,
    readonly n: number, readonly p: number, readonly K: number,
    private readonly P: number, private readonly Kpad: number, private readonly tri: number,
    private readonly offsets: { F: number; V: number; Z: number; G: number },
    /** Views into the kernel's memory, valid for this problem's lifetime (memory only grows at creation). */
    readonly V: Float64Array, readonly Z: Float64Array, readonly G: Float64Array,
  ) {}

  static create(F: Float32Array | Float64Array, n: number, cols: number, p: number, triangular: boolean, K: number): SimdSoftmaxProducts | null {
    const k = loadKernel();
    if (!k) return null;
    const P = p + (p % 2), Kpad = K + (K % 2);
    const F0 = 0, V0 = F0 + n * P * 8, Z0 = V0 + Kpad * P * 8, G0 = Z0 + n * Kpad * 8, end = G0 + Kpad * P * 8;
    const pages = Math.ceil(end / 65536), have = k.memory.buffer.byteLength / 65536;
    if (pages > have) k.memory.grow(pages - have);
    const buf = k.memory.buffer;
    const Fm = new Float64Array(buf, F0, n * P);
    Fm.fill(0);
    for (let i = 0; i < n; i++) {
      const len = triangular ? Math.min(i + 1, p) : p;
      for (let c = 0; c < len; c++) Fm[i * P + c] = F[i * cols + c]!;
    }
    const V = new Float64Array(buf, V0, Kpad * P);
    V.fill(0);
    return new SimdSoftmaxProducts(k, n, p, K, P, Kpad, triangular ? 1 : 0, { F: F0, V: V0, Z: Z0, G: G0 },
      V, new Float64Array(buf, Z0, n * Kpad), new Float64Array(buf, G0, Kpad * P));
  }

  /** Row stride of Z (classes padded to even). */
  get zStride(): number { return this.Kpad; }
  /** Row stride of V and G (width padded to even). */
  get stride(): number { return this.P; }

  /** Z = F V^T (V written into `V` by the caller, rows k < K, columns c < p). */
  scores(): void {
    this.k.scores(this.offsets.F, this.n, this.P, this.tri, this.offsets.V, this.Kpad, this.offsets.Z);
  }

  /** G = R^T F with the residuals R written into `Z` by the caller (padding columns zero). */
  gradient(): void {
    this.k.gradient(this.offsets.F, this.n, this.P, this.tri, this.offsets.Z, this.Kpad, this.offsets.G);
  }
}
