/** Feature post-processing shared by the evaluator, the server and the browser demo (browser-safe). */

/**
 * Scales each of the `n` rows of `x` (n x d, row-major) to unit Euclidean norm, in place. A zero row stays zero
 * (as `torch.nn.functional.normalize`, which divides by max(norm, 1e-12)).
 */
export function l2NormalizeRows(x: Float32Array, n: number, d: number): void {
  if (x.length < n * d) throw new RangeError(`l2NormalizeRows: ${x.length} values, expected ${n}x${d}`);
  for (let i = 0; i < n; i++) {
    const o = i * d;
    let s = 0;
    for (let j = 0; j < d; j++) { const v = x[o + j]!; s += v * v; }
    const scale = 1 / Math.max(Math.sqrt(s), 1e-12);
    for (let j = 0; j < d; j++) x[o + j] = x[o + j]! * scale;
  }
}

/** Index of the first of the `n` rows of `x` (n x d) holding NaN or an infinity, or -1 when all are finite. */
export function firstNonFiniteRow(x: Float32Array, n: number, d: number): number {
  for (let i = 0; i < n * d; i++) if (!Number.isFinite(x[i]!)) return Math.floor(i / d);
  return -1;
}
