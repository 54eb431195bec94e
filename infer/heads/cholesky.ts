/**
 * Pivoted Cholesky factorisation of a symmetric positive semi-definite matrix, for the logistic-regression head's
 * reduction to the span of the support rows. The column step's dot products run in WebAssembly SIMD where
 * available. Browser-safe.
 */
import { SimdCholeskyColumns, type KernelWorkspace } from './simd.js';

export interface PivotedCholesky {
  /** Lower-triangular factor, n rows `stride` apart; the first `rank` columns are used, the rest are zero. */
  L: Float64Array;
  stride: number;
  /** G[piv[i], piv[j]] = sum_t L[i,t] L[j,t]. */
  piv: Int32Array;
  rank: number;
}

/**
 * Factorises the n x n matrix G (row-major). Stops when the largest remaining pivot falls below 1e-12 of the
 * largest diagonal entry (directions that small carry no weight in the fit). With `kernels`, the column steps run in
 * WebAssembly SIMD on a factor in that memory.
 */
export function pivotedCholesky(G: Float64Array, n: number, kernels: KernelWorkspace | null = null): PivotedCholesky {
  const simd = kernels ? SimdCholeskyColumns.create(kernels, n) : null;
  const stride = simd ? simd.stride : n;
  const L = simd ? simd.L : new Float64Array(n * n);
  const piv = new Int32Array(n);
  const diag = new Float64Array(n);
  let maxDiag = 0;
  for (let i = 0; i < n; i++) { piv[i] = i; diag[i] = G[i * n + i]!; maxDiag = Math.max(maxDiag, diag[i]!); }
  const threshold = 1e-12 * maxDiag;
  let rank = 0;
  for (let k = 0; k < n; k++) {
    let best = k;
    for (let j = k + 1; j < n; j++) if (diag[j]! > diag[best]!) best = j;
    if (!(diag[best]! > threshold)) break;
    const ko = k * stride;
    if (best !== k) {
      [piv[k], piv[best]] = [piv[best]!, piv[k]!];
      [diag[k], diag[best]] = [diag[best]!, diag[k]!];
      const bo = best * stride;
      for (let t = 0; t < k; t++) {
        const tmp = L[ko + t]!;
        L[ko + t] = L[bo + t]!;
        L[bo + t] = tmp;
      }
    }
    const lkk = Math.sqrt(diag[k]!);
    const pk = piv[k]!;
    // Rows below k hold zeros from column k on, so the kernel's rounded-up length adds nothing.
    if (simd) simd.columnDots(k, k + 1);
    const dots = simd?.dots;
    for (let i = k + 1; i < n; i++) {
      const io = i * stride;
      let dot: number;
      if (simd) {
        dot = dots![i]!;
      } else {
        let s0 = 0, s1 = 0, t = 0;
        for (; t + 1 < k; t += 2) { s0 += L[io + t]! * L[ko + t]!; s1 += L[io + t + 1]! * L[ko + t + 1]!; }
        if (t < k) s0 += L[io + t]! * L[ko + t]!;
        dot = s0 + s1;
      }
      const lik = (G[piv[i]! * n + pk]! - dot) / lkk;
      L[io + k] = lik;
      diag[i] = diag[i]! - lik * lik;
    }
    L[ko + k] = lkk;
    rank = k + 1;
  }
  // A copy: the factor outlives the view (later regions may grow the kernel memory, which detaches it).
  return { L: simd ? L.slice() : L, stride, piv, rank };
}
