/**
 * Multinomial logistic regression with an L2 penalty on the weights and an unpenalised intercept, as the few-shot
 * protocol's head (scikit-learn `LogisticRegression(C=1, multi_class="multinomial", solver="lbfgs")`). Minimises
 * exactly
 *
 *     f(W, b) = sum_i -log softmax(W x_i + b)[y_i] + 0.5 / C * ||W||^2
 *
 * with L-BFGS and a strong-Wolfe line search, to a tight gradient tolerance. With two classes both rows of W are
 * kept (the full multinomial form; scikit-learn reports w1 alone, w0 = -w1 at the optimum).
 *
 * Speed: the rows are centred first (exact: W x + b = W (x - m) + (b + W m) and b is free), which removes the
 * direction that non-negative features share and the coupling it makes between W and b (about a third fewer
 * iterations). An episode has fewer support rows n than feature dimensions d (125 x 640 for 5-way 5-shot with 5
 * augmentations). The optimum's W lies in the span of the centred rows Xc (the gradient in W is a combination of
 * them plus W / C), so with Xc = L Q (L from a pivoted Cholesky factor of the Gram matrix Xc Xc^T, obtained from
 * X X^T; Q with orthonormal rows) and W = V Q the problem is the same logistic regression on the n x r rows of L,
 * with ||W|| = ||V||. Each objective evaluation then costs O(K n^2) instead of O(K n d); W is formed once at the
 * end. When n >= d the solver works on a centred copy of X. The Gram matrix, the Cholesky column steps, the
 * products of each evaluation and the final W run in WebAssembly SIMD where available (simd.ts): the fit opens one
 * kernel workspace, copies the rows into it once, and each stage takes its own regions of it.
 */
import { minimizeLbfgs } from './lbfgs.js';
import { pivotedCholesky } from './cholesky.js';
import { SoftmaxProblem } from './softmax-problem.js';
import { KernelWorkspace, SimdRows, simdCombineRows, simdGram } from './simd.js';
import { argmaxRows, checkFitArguments, checkPredictArguments, softmaxRows, stateArray, type Head, type HeadState } from './types.js';

export interface LogisticRegressionOptions {
  /** Inverse penalty strength. Default 1 (the protocol's). */
  C?: number;
  /** Iteration cap. Default 1000 (the reference's max_iter). */
  maxIter?: number;
  /** Stop when max |gradient| <= tol * max(1, |f|). Default 1e-8. */
  tol?: number;
  /** Use the WebAssembly SIMD kernels where available. Default true (false: plain TypeScript loops). */
  simd?: boolean;
}

/** Diagnostics of the last fit. */
export interface FitInfo {
  iterations: number;
  evaluations: number;
  gradientNorm: number;
  stop: string;
  /** Rank of the centred support rows used by the solver (d when it worked on the rows directly). */
  rank: number;
}

export class LogisticRegressionHead implements Head {
  readonly kind = 'logreg' as const;
  readonly C: number;
  readonly maxIter: number;
  readonly tol: number;
  readonly simd: boolean;
  /** numClasses x dim weights, row-major. */
  coef: Float64Array = new Float64Array(0);
  intercept: Float64Array = new Float64Array(0);
  numClasses = 0;
  dim = 0;
  fitInfo: FitInfo | null = null;
  private objectiveValue = NaN;

  constructor(opts: LogisticRegressionOptions = {}) {
    this.C = opts.C ?? 1;
    this.maxIter = opts.maxIter ?? 1000;
    this.tol = opts.tol ?? 1e-8;
    this.simd = opts.simd ?? true;
    if (!(this.C > 0)) throw new RangeError(`logreg: C must be positive, got ${this.C}`);
  }

  /** The objective f(W, b) at the fitted parameters, on the training rows. */
  objective(): number {
    return this.objectiveValue;
  }

  fit(x: Float32Array, n: number, d: number, labels: Int32Array, numClasses: number): void {
    checkFitArguments(x, n, d, labels, numClasses);
    const kernels = this.simd ? KernelWorkspace.open() : null;
    try {
      this.fitWith(kernels, x, n, d, labels, numClasses);
    } finally {
      kernels?.close();
    }
  }

  private fitWith(kernels: KernelWorkspace | null, x: Float32Array, n: number, d: number, labels: Int32Array, numClasses: number): void {
    const K = numClasses;
    const invC = 1 / this.C;
    const opts = { maxIter: this.maxIter, gradientTol: this.tol, kernels };
    const coef = new Float64Array(K * d);
    const intercept = new Float64Array(K);
    if (n < d) {
      // Centring the rows is exact (W x + b = W (x - m) + (b + W m), and b is free) and removes the direction that
      // non-negative features share, which couples W with b: about a third fewer iterations.
      const rows = kernels ? SimdRows.copy(kernels, x, n, d) : null;
      const G = gram(x, n, d, rows);
      const rowMean = centerGram(G, n);
      const { L, stride, piv, rank } = pivotedCholesky(G, n, kernels);
      const rowLabels = new Int32Array(n);
      for (let i = 0; i < n; i++) rowLabels[i] = labels[piv[i]!]!;
      const problem = new SoftmaxProblem(L, n, stride, rank, true, rowLabels, K, invC, kernels);
      const theta = new Float64Array(K * rank + K);
      const result = minimizeLbfgs((t, g) => problem.evaluate(t, g), theta, opts);
      // W = V Q with Q = L1^-1 Xc_p[0:r]: first A = V L1^-1 (solve A L1 = V), then W = A Xc_p[0:r].
      // Back substitution by rows of L (contiguous): once A[:, j] is known, remove its share from V[:, t < j].
      const A = theta.slice(0, K * rank);
      for (let j = rank - 1; j >= 0; j--) {
        const jo = j * stride;
        const ljj = L[jo + j]!;
        for (let k = 0; k < K; k++) {
          const ko = k * rank;
          const a = A[ko + j]! / ljj;
          A[ko + j] = a;
          for (let t = 0; t < j; t++) A[ko + t] = A[ko + t]! - a * L[jo + t]!;
        }
      }
      // Over the rows as given: Xc = X - 1 m^T, so W = A' X with A'[k, i] = A[k, j where piv[j] = i] - (sum_j A[k, j]) / n,
      // and b = b' - W m, where W m = A' (X m) = A' (row means of the uncentred Gram matrix).
      const weights = new Float64Array(K * n);
      for (let k = 0; k < K; k++) {
        let sum = 0;
        for (let j = 0; j < rank; j++) { const a = A[k * rank + j]!; weights[k * n + piv[j]!] = a; sum += a; }
        const shift = sum / n;
        let wm = 0;
        for (let i = 0; i < n; i++) { const a = weights[k * n + i]! - shift; weights[k * n + i] = a; wm += a * rowMean[i]!; }
        intercept[k] = theta[K * rank + k]! - wm;
      }
      combineRows(coef, weights, K, x, n, d, rows);
      this.objectiveValue = result.f;
      this.fitInfo = { iterations: result.iterations, evaluations: result.evaluations, gradientNorm: result.gradientNorm, stop: result.stop, rank };
    } else {
      const mean = new Float64Array(d);
      for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) mean[c] = mean[c]! + x[i * d + c]!;
      for (let c = 0; c < d; c++) mean[c] = mean[c]! / n;
      const centred = new Float64Array(n * d);
      for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) centred[i * d + c] = x[i * d + c]! - mean[c]!;
      const problem = new SoftmaxProblem(centred, n, d, d, false, labels, K, invC, kernels);
      const theta = new Float64Array(K * d + K);
      const result = minimizeLbfgs((t, g) => problem.evaluate(t, g), theta, opts);
      coef.set(theta.subarray(0, K * d));
      for (let k = 0; k < K; k++) {
        let wm = 0;
        for (let c = 0; c < d; c++) wm += coef[k * d + c]! * mean[c]!;
        intercept[k] = theta[K * d + k]! - wm;
      }
      this.objectiveValue = result.f;
      this.fitInfo = { iterations: result.iterations, evaluations: result.evaluations, gradientNorm: result.gradientNorm, stop: result.stop, rank: d };
    }
    this.coef = coef;
    this.intercept = intercept;
    this.numClasses = K;
    this.dim = d;
  }

  /** Scores W x + b of `n` rows (n x numClasses). */
  decisionFunction(x: Float32Array, n: number): Float32Array {
    checkPredictArguments(x, n, this.dim);
    const K = this.numClasses, d = this.dim;
    const out = new Float32Array(n * K);
    for (let i = 0; i < n; i++) {
      const xo = i * d;
      for (let k = 0; k < K; k++) {
        const w = k * d;
        let s = this.intercept[k]!;
        for (let c = 0; c < d; c++) s += this.coef[w + c]! * x[xo + c]!;
        out[i * K + k] = s;
      }
    }
    return out;
  }

  predictProba(x: Float32Array, n: number): Float32Array {
    const scores = this.decisionFunction(x, n);
    softmaxRows(scores, n, this.numClasses);
    return scores;
  }

  predict(x: Float32Array, n: number): Int32Array {
    return argmaxRows(this.decisionFunction(x, n), n, this.numClasses);
  }

  /** parameters: coef (numClasses*dim, row-major), intercept (numClasses), C. */
  toJSON(): HeadState {
    return {
      kind: 'logreg', version: 1, numClasses: this.numClasses, dim: this.dim,
      parameters: { C: this.C, coef: Array.from(this.coef), intercept: Array.from(this.intercept) },
    };
  }

  static fromJSON(state: HeadState): LogisticRegressionHead {
    const C = typeof state.parameters.C === 'number' ? state.parameters.C : 1;
    const head = new LogisticRegressionHead({ C });
    head.numClasses = state.numClasses;
    head.dim = state.dim;
    head.coef = Float64Array.from(stateArray(state, 'coef', state.numClasses * state.dim));
    head.intercept = Float64Array.from(stateArray(state, 'intercept', state.numClasses));
    return head;
  }
}

/**
 * X X^T (n x n, float64) of the rows of x: the WebAssembly SIMD kernel given the rows in kernel memory, else this
 * loop in 2 x 2 blocks so that each load feeds two products.
 */
export function gram(x: Float32Array, n: number, d: number, rows: SimdRows | null = null): Float64Array {
  const G = new Float64Array(n * n);
  if (rows) { simdGram(rows, G); return G; }
  for (let a = 0; a < n; a += 2) {
    const a1 = Math.min(a + 1, n - 1);
    const ao = a * d, a1o = a1 * d;
    for (let b = 0; b <= a; b += 2) {
      const b1 = Math.min(b + 1, n - 1);
      const bo = b * d, b1o = b1 * d;
      let s00 = 0, s01 = 0, s10 = 0, s11 = 0;
      for (let c = 0; c < d; c++) {
        const xa = x[ao + c]!, xa1 = x[a1o + c]!, xb = x[bo + c]!, xb1 = x[b1o + c]!;
        s00 += xa * xb; s01 += xa * xb1; s10 += xa1 * xb; s11 += xa1 * xb1;
      }
      G[a * n + b] = s00; G[b * n + a] = s00;
      G[a * n + b1] = s01; G[b1 * n + a] = s01;
      G[a1 * n + b] = s10; G[b * n + a1] = s10;
      G[a1 * n + b1] = s11; G[b1 * n + a1] = s11;
    }
  }
  return G;
}

/**
 * G := (I - 11^T/n) G (I - 11^T/n), the Gram matrix of the centred rows. Returns the row means of G as given
 * (x_i . m, with m the mean row).
 */
function centerGram(G: Float64Array, n: number): Float64Array {
  const rowMean = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    const o = i * n;
    for (let j = 0; j < n; j++) s += G[o + j]!;
    rowMean[i] = s / n;
    total += s;
  }
  const grand = total / (n * n);
  for (let i = 0; i < n; i++) {
    const o = i * n, ri = rowMean[i]! - grand;
    for (let j = 0; j < n; j++) G[o + j] = G[o + j]! - ri - rowMean[j]!;
  }
  return rowMean;
}

/**
 * coef (K x d) = A (K x n) times the rows of x: the WebAssembly SIMD kernel given the rows in kernel memory, else
 * four rows at a time so that each coef entry is loaded and stored once per four multiply-adds.
 */
function combineRows(coef: Float64Array, A: Float64Array, K: number, x: Float32Array, n: number, d: number, rows: SimdRows | null): void {
  if (rows) { simdCombineRows(rows, coef, A, K); return; }
  coef.fill(0);
  for (let k = 0; k < K; k++) {
    const w = k * d;
    for (let j = 0; j < n; j += 4) {
      // Past the last row, repeat it with a zero coefficient.
      const j1 = Math.min(j + 1, n - 1), j2 = Math.min(j + 2, n - 1), j3 = Math.min(j + 3, n - 1);
      const a0 = A[k * n + j]!;
      const a1 = j + 1 < n ? A[k * n + j1]! : 0, a2 = j + 2 < n ? A[k * n + j2]! : 0, a3 = j + 3 < n ? A[k * n + j3]! : 0;
      const x0 = j * d, x1 = j1 * d, x2 = j2 * d, x3 = j3 * d;
      for (let c = 0; c < d; c++) {
        coef[w + c] = coef[w + c]! + a0 * x[x0 + c]! + a1 * x[x1 + c]! + a2 * x[x2 + c]! + a3 * x[x3 + c]!;
      }
    }
  }
}
