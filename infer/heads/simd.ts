/**
 * Calls into the WebAssembly SIMD kernels of the logistic-regression head (simd-kernels.ts): compiling the module
 * once, the kernel memory a fit owns, copies in and out. Several times faster than the scalar loops. Where
 * WebAssembly SIMD is unavailable, KernelWorkspace.open() returns null and the callers use their scalar loops.
 * Browser-safe.
 */
import { buildModule, type KernelExports } from './simd-kernels.js';

/** The smallest module with a v128 value: it validates exactly where the engine supports WebAssembly SIMD. */
const SIMD_PROBE = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00,
  0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd, 0x0c, ...new Array<number>(16).fill(0), 0x0b,
]);

/**
 * Compiles a kernel module once. An engine without WebAssembly SIMD gets null silently (the heads' plain loops are
 * the documented fallback); a module that does not compile where SIMD is supported is a defect, reported once
 * through `warn`, and the heads fall back to their plain loops.
 */
export class KernelCompiler {
  private compiled: WebAssembly.Module | null | undefined;
  /** Why module() is null; empty while it is not. */
  reason = '';

  constructor(private readonly build: () => Uint8Array, private readonly warn: (message: string) => void) {}

  module(): WebAssembly.Module | null {
    if (this.compiled !== undefined) return this.compiled;
    this.compiled = null;
    if (typeof WebAssembly !== 'object' || !WebAssembly.validate(SIMD_PROBE)) {
      this.reason = 'this JavaScript engine has no WebAssembly SIMD';
      return null;
    }
    try {
      this.compiled = new WebAssembly.Module(this.build() as BufferSource);
    } catch (err) {
      this.reason = `the WebAssembly SIMD kernels did not compile (${err instanceof Error ? err.message : String(err)})`;
      this.warn(`skd: ${this.reason}; the heads use their plain loops`);
    }
    return this.compiled;
  }
}

const compiler = new KernelCompiler(buildModule, (message) => console.warn(message));
/** Instances of the module whose workspaces were closed, for the next fits to reuse (memory only grows). */
const idle: KernelExports[] = [];

/** Whether the SIMD kernels are available, and why not when they are not. */
export function simdStatus(): { available: boolean; reason: string } {
  const available = compiler.module() !== null;
  return { available, reason: compiler.reason };
}

/** Whether the SIMD kernels are available (false, say, in an engine without WebAssembly SIMD). */
export function simdAvailable(): boolean {
  return simdStatus().available;
}

/**
 * The kernel memory of one fit: an instance of the module that the fit has to itself, handed out in regions that
 * never overlap. Memory grows as regions are added (which detaches earlier typed-array views; KernelRegion.view
 * re-makes them). close() hands the instance back for a later fit; regions are unusable after it.
 */
export class KernelWorkspace {
  private used = 0;
  private closed = false;

  private constructor(readonly kernels: KernelExports) {}

  /** A workspace, or null where the SIMD kernels are unavailable. */
  static open(): KernelWorkspace | null {
    const module = compiler.module();
    if (!module) return null;
    return new KernelWorkspace(idle.pop() ?? (new WebAssembly.Instance(module, {}).exports as unknown as KernelExports));
  }

  get isOpen(): boolean { return !this.closed; }

  /** A region of `length` float64 values, 16-byte aligned; zero-filled unless `zero` is false. */
  f64(length: number, zero = true): KernelRegion<Float64Array> {
    return this.region(length, 8, (buf, offset) => new Float64Array(buf, offset, length), zero);
  }

  /** A region of `length` float32 values, 16-byte aligned; zero-filled unless `zero` is false. */
  f32(length: number, zero = true): KernelRegion<Float32Array> {
    return this.region(length, 4, (buf, offset) => new Float32Array(buf, offset, length), zero);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    idle.push(this.kernels);
  }

  private region<T extends Float32Array | Float64Array>(length: number, bytesPer: number, view: (buf: ArrayBuffer, offset: number) => T, zero: boolean): KernelRegion<T> {
    if (this.closed) throw new Error('kernel workspace: region requested after close()');
    const offset = this.used;
    this.used = offset + Math.ceil((length * bytesPer) / 16) * 16;
    const memory = this.kernels.memory;
    const pages = Math.ceil(this.used / 65536) - memory.buffer.byteLength / 65536;
    if (pages > 0) memory.grow(pages);
    const region = new KernelRegion(this, offset, view);
    if (zero) region.view.fill(0);
    return region;
  }
}

/** Part of a workspace's memory, as a typed array. */
export class KernelRegion<T extends Float32Array | Float64Array> {
  private cached: T | null = null;

  constructor(private readonly workspace: KernelWorkspace, readonly byteOffset: number, private readonly make: (buf: ArrayBuffer, offset: number) => T) {}

  /** The region's values: a view re-made when the memory has grown since the last one (growth detaches views). */
  get view(): T {
    if (!this.workspace.isOpen) throw new Error('kernel workspace: region used after close()');
    const buf = this.workspace.kernels.memory.buffer;
    if (this.cached === null || this.cached.buffer !== buf) this.cached = this.make(buf, this.byteOffset);
    return this.cached;
  }
}

/**
 * The support rows in kernel memory, for the Gram matrix and the final row combination: n4 rows (n rounded up
 * to 4, zero past n) of `stride` float32 (d rounded up to 32, zero past d).
 */
export class SimdRows {
  private constructor(readonly workspace: KernelWorkspace, readonly region: KernelRegion<Float32Array>, readonly n: number, readonly d: number, readonly n4: number, readonly stride: number) {}

  static copy(workspace: KernelWorkspace, x: Float32Array, n: number, d: number): SimdRows {
    const n4 = Math.ceil(n / 4) * 4, stride = Math.ceil(d / 32) * 32;
    const region = workspace.f32(n4 * stride, false);
    const dst = region.view;
    if (stride === d) {
      dst.set(x.subarray(0, n * d));
    } else {
      for (let i = 0; i < n; i++) { dst.set(x.subarray(i * d, (i + 1) * d), i * stride); dst.fill(0, i * stride + d, (i + 1) * stride); }
    }
    dst.fill(0, n * stride);
    return new SimdRows(workspace, region, n, d, n4, stride);
  }
}

/** Writes X X^T of the rows into G (n x n, both triangles). */
export function simdGram(rows: SimdRows, G: Float64Array): void {
  const { workspace, n, stride } = rows;
  const nPad = n + (n % 2); // the kernel's 2 x 2 blocks; row n (when n is odd) is zero padding
  const out = workspace.f64(nPad * nPad, false);
  workspace.kernels.gram(rows.region.byteOffset, nPad, stride, out.byteOffset);
  const g = out.view;
  for (let a = 0; a < n; a++) {
    for (let b = 0; b <= a; b++) {
      const v = g[a * nPad + b]!;
      G[a * n + b] = v;
      G[b * n + a] = v;
    }
  }
}

/** coef (K x d) = A (K x n, row-major, float64) times the rows (float32). */
export function simdCombineRows(rows: SimdRows, coef: Float64Array, A: Float64Array, K: number): void {
  const { workspace, n, d, n4, stride } = rows;
  const a = workspace.f64(K * n4);
  const am = a.view;
  for (let c = 0; c < K; c++) am.set(A.subarray(c * n, (c + 1) * n), c * n4);
  const w = workspace.f64(K * stride, false);
  workspace.kernels.combine(rows.region.byteOffset, n4, stride * 4, a.byteOffset, K, w.byteOffset);
  const wm = w.view;
  for (let c = 0; c < K; c++) coef.set(wm.subarray(c * stride, c * stride + d), c * d);
}

/**
 * Scores and gradient of the softmax objective for a fixed n x p design matrix F, in WebAssembly SIMD (float64).
 * The design is copied once into kernel memory, padded to an even width P; each evaluation writes V into `V`,
 * runs scores(), writes the residuals into `Z`, runs gradient() and reads `G`.
 */
export class SimdSoftmaxProducts {
  private constructor(
    private readonly k: KernelExports,
    readonly n: number, readonly p: number, readonly K: number,
    private readonly P: number, private readonly Kpad: number, private readonly tri: number,
    private readonly F: KernelRegion<Float64Array>, private readonly v: KernelRegion<Float64Array>,
    private readonly z: KernelRegion<Float64Array>, private readonly g: KernelRegion<Float64Array>,
  ) {}

  static create(workspace: KernelWorkspace, F: Float32Array | Float64Array, n: number, cols: number, p: number, triangular: boolean, K: number): SimdSoftmaxProducts {
    const P = p + (p % 2), Kpad = K + (K % 2);
    const f = workspace.f64(n * P);
    const Fm = f.view;
    for (let i = 0; i < n; i++) {
      const len = triangular ? Math.min(i + 1, p) : p;
      for (let c = 0; c < len; c++) Fm[i * P + c] = F[i * cols + c]!;
    }
    return new SimdSoftmaxProducts(workspace.kernels, n, p, K, P, Kpad, triangular ? 1 : 0,
      f, workspace.f64(Kpad * P), workspace.f64(n * Kpad, false), workspace.f64(Kpad * P, false));
  }

  /** Row stride of Z (classes padded to even). */
  get zStride(): number { return this.Kpad; }
  /** Row stride of V and G (width padded to even). */
  get stride(): number { return this.P; }
  /** Parameters (Kpad x P; rows k >= K and columns c >= p stay zero). */
  get V(): Float64Array { return this.v.view; }
  /** Scores, then residuals (n x Kpad; padding columns zero before gradient()). */
  get Z(): Float64Array { return this.z.view; }
  /** Gradient (Kpad x P). */
  get G(): Float64Array { return this.g.view; }

  /** Z = F V^T. */
  scores(): void {
    this.k.scores(this.F.byteOffset, this.n, this.P, this.tri, this.v.byteOffset, this.Kpad, this.z.byteOffset);
  }

  /** G = R^T F with the residuals R in Z. */
  gradient(): void {
    this.k.gradient(this.F.byteOffset, this.n, this.P, this.tri, this.z.byteOffset, this.Kpad, this.g.byteOffset);
  }
}

/**
 * Workspace of a pivoted Cholesky factorisation in kernel memory: L (n rows, `stride` apart, a multiple of 4,
 * zero-filled) and the column step's dot products.
 */
export class SimdCholeskyColumns {
  private constructor(private readonly k: KernelExports, readonly n: number, readonly stride: number, private readonly l: KernelRegion<Float64Array>, private readonly d: KernelRegion<Float64Array>) {}

  static create(workspace: KernelWorkspace, n: number): SimdCholeskyColumns {
    const stride = Math.ceil(n / 4) * 4;
    return new SimdCholeskyColumns(workspace.kernels, n, stride, workspace.f64(n * stride), workspace.f64(n, false));
  }

  get L(): Float64Array { return this.l.view; }
  get dots(): Float64Array { return this.d.view; }

  /** dots[i] = L[i, 0:k] . L[k, 0:k] for i0 <= i < n (entries of L past column k-1 in these rows must be zero). */
  columnDots(k: number, i0: number): void {
    const lenBytes = Math.ceil(k / 4) * 32;
    const rowBytes = this.stride * 8;
    const L0 = this.l.byteOffset;
    this.k.colDots(L0, rowBytes, lenBytes, L0 + k * rowBytes, i0, this.n, this.d.byteOffset);
  }
}

/**
 * The L-BFGS correction pairs and search direction in kernel memory (vectors padded to a multiple of 4 with zeros
 * that stay zero), and the fused two-loop sweep over them.
 */
export class SimdLbfgsVectors {
  private views: { S: Float64Array[]; Y: Float64Array[]; dir: Float64Array } | null = null;

  private constructor(private readonly k: KernelExports, private readonly region: KernelRegion<Float64Array>, private readonly dim: number, private readonly m: number, private readonly padded: number) {
    this.dirOffset = region.byteOffset + 2 * m * padded * 8;
  }

  private readonly dirOffset: number;

  static create(workspace: KernelWorkspace, dim: number, m: number): SimdLbfgsVectors {
    const padded = Math.ceil(dim / 4) * 4;
    return new SimdLbfgsVectors(workspace.kernels, workspace.f64((2 * m + 1) * padded), dim, m, padded);
  }

  /** S (m vectors), Y (m vectors) and dir, each `dim` long; the same arrays until the memory grows. */
  vectors(): { S: Float64Array[]; Y: Float64Array[]; dir: Float64Array } {
    const all = this.region.view;
    if (this.views === null || this.views.dir.buffer !== all.buffer) {
      const at = (slot: number) => all.subarray(slot * this.padded, slot * this.padded + this.dim);
      this.views = { S: Array.from({ length: this.m }, (_, i) => at(i)), Y: Array.from({ length: this.m }, (_, i) => at(this.m + i)), dir: at(2 * this.m) };
    }
    return this.views;
  }

  /** dir += c * P, then returns Q . dir (P, Q: this object's vectors, or dir itself). */
  axpyDot(c: number, P: Float64Array, Q: Float64Array): number {
    return this.k.axpyDot(this.dirOffset, P.byteOffset, Q.byteOffset, this.padded * 8, c);
  }
}
