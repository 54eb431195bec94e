/**
 * The logistic-regression head's objective as a function of its parameters: softmax cross-entropy over an n x p
 * design matrix plus the L2 penalty, with its gradient, for the L-BFGS solver. Browser-safe.
 */
import { SimdSoftmaxProducts, type KernelWorkspace } from './simd.js';

/**
 * The softmax objective over an n x p design matrix F (rows of length `cols`, of which a row i of a lower-triangular
 * F uses the first min(i+1, p) entries), parameters theta = [V (K x p) row-major, b (K)]. Both products (scores
 * Z = F V^T and gradient R^T F) run over pairs of rows and pairs of classes, so that each load feeds two or four
 * multiply-adds.
 */
export class SoftmaxProblem {
  /** Scores, then residuals softmax - onehot (n x K). */
  private readonly z: Float64Array;
  constructor(
    private readonly F: Float32Array | Float64Array,
    private readonly n: number,
    private readonly cols: number,
    private readonly p: number,
    private readonly triangular: boolean,
    private readonly labels: Int32Array,
    private readonly K: number,
    private readonly invC: number,
    kernels: KernelWorkspace | null,
  ) {
    this.z = new Float64Array(n * K);
    this.simd = kernels ? SimdSoftmaxProducts.create(kernels, F, n, cols, p, triangular, K) : null;
  }

  /** The two products in WebAssembly SIMD, given kernel memory. */
  private readonly simd: SimdSoftmaxProducts | null;

  /** The same objective with the products Z = F V^T and R^T F done by the SIMD kernels. */
  private evaluateSimd(s: SimdSoftmaxProducts, theta: Float64Array, grad: Float64Array): number {
    const { n, p, labels, K, invC } = this;
    const P = s.stride, Ks = s.zStride, V = s.V, Z = s.Z;
    const bOffset = K * p;
    for (let k = 0; k < K; k++) {
      const o = k * P, to = k * p;
      for (let c = 0; c < p; c++) V[o + c] = theta[to + c]!;
    }
    s.scores();
    for (let k = 0; k < K; k++) grad[bOffset + k] = 0;
    for (let i = 0; i < n; i++) {
      const o = i * Ks;
      for (let k = 0; k < K; k++) Z[o + k] = Z[o + k]! + theta[bOffset + k]!;
    }
    const f = softmaxResidualsInPlace(Z, n, K, Ks, labels);
    for (let i = 0; i < n; i++) {
      const o = i * Ks;
      for (let k = 0; k < K; k++) grad[bOffset + k] = grad[bOffset + k]! + Z[o + k]!;
      // The kernel reads whole padded rows: padding must stay zero.
      for (let k = K; k < Ks; k++) Z[o + k] = 0;
    }
    s.gradient();
    const G = s.G;
    let penalty = 0;
    for (let k = 0; k < K; k++) {
      const o = k * P, to = k * p;
      for (let c = 0; c < p; c++) {
        const v = theta[to + c]!;
        penalty += v * v;
        grad[to + c] = G[o + c]! + invC * v;
      }
    }
    return f + 0.5 * invC * penalty;
  }

  private rowLength(i: number): number {
    return this.triangular ? Math.min(i + 1, this.p) : this.p;
  }

  evaluate(theta: Float64Array, grad: Float64Array): number {
    if (this.simd) return this.evaluateSimd(this.simd, theta, grad);
    const { F, n, cols, p, labels, K, invC, z } = this;
    const bOffset = K * p;

    // Scores z = F V^T + b.
    for (let i = 0; i < n; i += 2) {
      const i1 = Math.min(i + 1, n - 1);
      const f0o = i * cols, f1o = i1 * cols;
      const len0 = this.rowLength(i), len1 = this.rowLength(i1);
      for (let k = 0; k < K; k += 2) {
        const k1 = Math.min(k + 1, K - 1);
        const v0o = k * p, v1o = k1 * p;
        let s00 = 0, s01 = 0, s10 = 0, s11 = 0;
        for (let c = 0; c < len0; c++) {
          const f0 = F[f0o + c]!, f1 = F[f1o + c]!, v0 = theta[v0o + c]!, v1 = theta[v1o + c]!;
          s00 += f0 * v0; s01 += f0 * v1; s10 += f1 * v0; s11 += f1 * v1;
        }
        for (let c = len0; c < len1; c++) {
          const f1 = F[f1o + c]!;
          s10 += f1 * theta[v0o + c]!; s11 += f1 * theta[v1o + c]!;
        }
        const b0 = theta[bOffset + k]!, b1 = theta[bOffset + k1]!;
        z[i * K + k] = s00 + b0; z[i * K + k1] = s01 + b1;
        z[i1 * K + k] = s10 + b0; z[i1 * K + k1] = s11 + b1;
      }
    }

    const f = softmaxResidualsInPlace(z, n, K, K, labels);

    // Gradient: V part R^T F + V / C, intercept part sum of residuals.
    grad.fill(0);
    for (let k = 0; k < K; k += 2) {
      const k1 = Math.min(k + 1, K - 1);
      const g0o = k * p, g1o = k1 * p;
      const same = k1 === k;
      for (let i = 0; i < n; i += 2) {
        const i1 = Math.min(i + 1, n - 1);
        const f0o = i * cols, f1o = i1 * cols;
        const len0 = this.rowLength(i), len1 = this.rowLength(i1);
        const last = i1 === i;
        // With an odd count the last pair repeats an index; its second half must add nothing.
        const r00 = z[i * K + k]!, r01 = same ? 0 : z[i * K + k1]!;
        const r10 = last ? 0 : z[i1 * K + k]!, r11 = last || same ? 0 : z[i1 * K + k1]!;
        for (let c = 0; c < len0; c++) {
          const f0 = F[f0o + c]!, f1 = F[f1o + c]!;
          grad[g0o + c] = grad[g0o + c]! + r00 * f0 + r10 * f1;
          grad[g1o + c] = grad[g1o + c]! + r01 * f0 + r11 * f1;
        }
        for (let c = len0; c < len1; c++) {
          const f1 = F[f1o + c]!;
          grad[g0o + c] = grad[g0o + c]! + r10 * f1;
          grad[g1o + c] = grad[g1o + c]! + r11 * f1;
        }
      }
    }
    for (let i = 0; i < n; i++) for (let k = 0; k < K; k++) grad[bOffset + k] = grad[bOffset + k]! + z[i * K + k]!;
    let penalty = 0;
    for (let j = 0; j < bOffset; j++) {
      const v = theta[j]!;
      penalty += v * v;
      grad[j] = grad[j]! + invC * v;
    }
    return f + 0.5 * invC * penalty;
  }
}

/**
 * Softmax cross-entropy of n rows of K scores (rows `stride` apart): returns sum_i -log softmax(z_i)[y_i] and
 * replaces each row's scores by its residuals softmax(z_i) - onehot(y_i), the gradient with respect to them.
 */
function softmaxResidualsInPlace(z: Float64Array, n: number, K: number, stride: number, labels: Int32Array): number {
  let f = 0;
  for (let i = 0; i < n; i++) {
    const o = i * stride;
    let max = -Infinity;
    for (let k = 0; k < K; k++) max = Math.max(max, z[o + k]!);
    const y = labels[i]!;
    const zy = z[o + y]!;
    let sum = 0;
    for (let k = 0; k < K; k++) { const e = Math.exp(z[o + k]! - max); z[o + k] = e; sum += e; }
    f += Math.log(sum) + max - zy;
    const inv = 1 / sum;
    for (let k = 0; k < K; k++) z[o + k] = z[o + k]! * inv - (k === y ? 1 : 0);
  }
  return f;
}
