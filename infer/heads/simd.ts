/**
 * Calls into the WebAssembly SIMD kernels of the logistic-regression head (simd-kernels.ts): memory layout,
 * copies in and out. Several times faster than the scalar loops. Where WebAssembly SIMD is unavailable the
 * functions return false / null and the caller uses its scalar loops. Browser-safe.
 */
import { buildModule } from './simd-kernels.js';

type Kernel7 = (a: number, b: number, c: number, d: number, e: number, f: number, g: number) => void;
interface GramKernel {
  gram: (x: number, n: number, d: number, g: number) => void;
  scores: Kernel7;
  gradient: Kernel7;
  colDots: Kernel7;
  combine: (x: number, n4: number, xRowBytes: number, A: number, K: number, W: number) => void;
  axpyDot: (D: number, P: number, Q: number, lenBytes: number, c: number) => number;
  memory: WebAssembly.Memory;
}
let compiled: WebAssembly.Module | null | undefined;
let kernel: GramKernel | null | undefined;
/** A second instance, with a memory of its own, for the L-BFGS vectors that live across objective evaluations. */
let lbfgsKernel: GramKernel | null | undefined;

function instantiate(): GramKernel | null {
  if (compiled === undefined) {
    compiled = null;
    try {
      if (typeof WebAssembly === 'object') compiled = new WebAssembly.Module(buildModule() as BufferSource);
    } catch {
      compiled = null; // no SIMD support: callers fall back to scalar code
    }
  }
  return compiled ? new WebAssembly.Instance(compiled, {}).exports as unknown as GramKernel : null;
}

function loadKernel(): GramKernel | null {
  if (kernel === undefined) kernel = instantiate();
  return kernel;
}

/** Grows the kernel's memory to at least `bytes` (views made before a growth are detached). */
function ensureBytes(k: GramKernel, bytes: number): void {
  const pages = Math.ceil(bytes / 65536), have = k.memory.buffer.byteLength / 65536;
  if (pages > have) k.memory.grow(pages - have);
}

/** Copies the n rows of x (n x d) into dst with rows `stride` apart, zero-filling the padding and the rows past n. */
function copyRowsPadded(dst: Float32Array, x: Float32Array, n: number, d: number, stride: number): void {
  if (stride === d) {
    dst.set(x.subarray(0, n * d));
  } else {
    for (let i = 0; i < n; i++) { dst.set(x.subarray(i * d, (i + 1) * d), i * stride); dst.fill(0, i * stride + d, (i + 1) * stride); }
  }
  dst.fill(0, n * stride);
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
  ensureBytes(k, need);
  copyRowsPadded(new Float32Array(k.memory.buffer, 0, nPad * dPad), x, n, d, dPad);
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
    ensureBytes(k, end);
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

/**
 * Workspace of a pivoted Cholesky factorisation in the kernel's memory: L (n rows, `stride` apart, a multiple of 4,
 * zero-filled) and the column step's dot products.
 */
export class SimdCholeskyColumns {
  private constructor(private readonly k: GramKernel, readonly n: number, readonly stride: number, readonly L: Float64Array, readonly dots: Float64Array) {}

  static create(n: number): SimdCholeskyColumns | null {
    const k = loadKernel();
    if (!k) return null;
    const stride = Math.ceil(n / 4) * 4;
    const dotsOffset = n * stride * 8;
    ensureBytes(k, dotsOffset + n * 8);
    const L = new Float64Array(k.memory.buffer, 0, n * stride);
    L.fill(0);
    return new SimdCholeskyColumns(k, n, stride, L, new Float64Array(k.memory.buffer, dotsOffset, n));
  }

  /** dots[i] = L[i, 0:k] . L[k, 0:k] for i0 <= i < n (entries of L past column k-1 in these rows must be zero). */
  columnDots(k: number, i0: number): void {
    const lenBytes = Math.ceil(k / 4) * 32;
    const rowBytes = this.stride * 8;
    this.k.colDots(0, rowBytes, lenBytes, k * rowBytes, i0, this.n, this.n * rowBytes);
  }
}

/**
 * coef (K x d) = A (K x n, row-major, float64) times the n rows of x (n x d float32). Returns false, doing nothing,
 * when the SIMD kernel is unavailable.
 */
export function simdCombineRows(coef: Float64Array, A: Float64Array, K: number, x: Float32Array, n: number, d: number): boolean {
  const k = loadKernel();
  if (!k) return false;
  const n4 = Math.ceil(n / 4) * 4, d4 = Math.ceil(d / 4) * 4;
  const xBytes = n4 * d4 * 4, aOffset = xBytes, wOffset = aOffset + K * n4 * 8;
  ensureBytes(k, wOffset + K * d4 * 8);
  const buf = k.memory.buffer;
  copyRowsPadded(new Float32Array(buf, 0, n4 * d4), x, n, d, d4);
  const am = new Float64Array(buf, aOffset, K * n4);
  am.fill(0);
  for (let c = 0; c < K; c++) am.set(A.subarray(c * n, (c + 1) * n), c * n4);
  k.combine(0, n4, d4 * 4, aOffset, K, wOffset);
  const wm = new Float64Array(buf, wOffset, K * d4);
  for (let c = 0; c < K; c++) coef.set(wm.subarray(c * d4, c * d4 + d), c * d);
  return true;
}

/**
 * The L-BFGS correction pairs and search direction in kernel memory (vectors padded to a multiple of 4 with zeros
 * that stay zero), and the fused two-loop sweep over them. One set at a time: creating another reuses the memory.
 */
export class SimdLbfgsVectors {
  private constructor(
    private readonly k: GramKernel, private readonly lenBytes: number,
    readonly S: Float64Array[], readonly Y: Float64Array[], readonly dir: Float64Array,
  ) {}

  static create(dim: number, m: number): SimdLbfgsVectors | null {
    if (lbfgsKernel === undefined) lbfgsKernel = instantiate();
    const k = lbfgsKernel;
    if (!k) return null;
    const padded = Math.ceil(dim / 4) * 4;
    const bytes = padded * 8;
    ensureBytes(k, (2 * m + 1) * bytes);
    const buf = k.memory.buffer;
    new Float64Array(buf, 0, (2 * m + 1) * padded).fill(0);
    const at = (slot: number) => new Float64Array(buf, slot * bytes, dim);
    return new SimdLbfgsVectors(k, bytes, Array.from({ length: m }, (_, i) => at(i)), Array.from({ length: m }, (_, i) => at(m + i)), at(2 * m));
  }

  /** dir += c * P, then returns Q . dir (P, Q: this object's vectors, or dir itself). */
  axpyDot(c: number, P: Float64Array, Q: Float64Array): number {
    return this.k.axpyDot(this.dir.byteOffset, P.byteOffset, Q.byteOffset, this.lenBytes, c);
  }
}
