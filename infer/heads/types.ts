/**
 * The interface every few-shot head implements: fit on a support set of feature rows, then score query rows.
 * Browser-safe: plain TypeScript over Float32Array, no Node imports.
 */

export type HeadKind = 'logreg' | 'proto' | 'nn';

export const HEAD_KINDS: readonly HeadKind[] = ['logreg', 'proto', 'nn'];

/**
 * A fitted head as plain JSON. `parameters` holds named flat arrays (row-major) and scalars; each head documents its
 * own entries. `numClasses` and `dim` are the shape the head was fitted with.
 */
export interface HeadState {
  kind: HeadKind;
  /** Bumped when the meaning of `parameters` changes. */
  version: 1;
  numClasses: number;
  dim: number;
  parameters: Record<string, number | number[]>;
}

export interface Head {
  readonly kind: HeadKind;
  /**
   * Fits on `n` rows of `d` features (`x` row-major, n*d values) with labels in 0..numClasses-1.
   * `x` is read, never kept or modified (heads that need the rows copy what they keep).
   */
  fit(x: Float32Array, n: number, d: number, labels: Int32Array, numClasses: number): void;
  /** Class probabilities of `n` rows: n*numClasses values, row-major. */
  predictProba(x: Float32Array, n: number): Float32Array;
  /** The most probable class of each of `n` rows. */
  predict(x: Float32Array, n: number): Int32Array;
  toJSON(): HeadState;
}

/** Checks the arguments of `fit` and throws a RangeError naming what is wrong. */
export function checkFitArguments(x: Float32Array, n: number, d: number, labels: Int32Array, numClasses: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`fit: expected at least one row, got n=${n}`);
  if (!Number.isInteger(d) || d < 1) throw new RangeError(`fit: expected a positive feature size, got d=${d}`);
  if (x.length !== n * d) throw new RangeError(`fit: x has ${x.length} values, expected n*d = ${n * d}`);
  if (labels.length !== n) throw new RangeError(`fit: ${labels.length} labels for ${n} rows`);
  if (!Number.isInteger(numClasses) || numClasses < 2) throw new RangeError(`fit: expected at least 2 classes, got ${numClasses}`);
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    if (y < 0 || y >= numClasses) throw new RangeError(`fit: label ${y} of row ${i} is outside 0..${numClasses - 1}`);
  }
}

/** Checks the arguments of `predict`/`predictProba` against the fitted feature size. */
export function checkPredictArguments(x: Float32Array, n: number, d: number): void {
  if (d === 0) throw new Error('predict: the head has not been fitted');
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`predict: bad row count n=${n}`);
  if (x.length !== n * d) throw new RangeError(`predict: x has ${x.length} values, expected n*d = ${n}*${d}`);
}

/** Row-wise argmax of an n x k score matrix. */
export function argmaxRows(scores: Float32Array, n: number, k: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestValue = scores[i * k]!;
    for (let c = 1; c < k; c++) {
      const v = scores[i * k + c]!;
      if (v > bestValue) { bestValue = v; best = c; }
    }
    out[i] = best;
  }
  return out;
}

/** In-place, numerically stable softmax of each row of an n x k matrix (values computed in float64). */
export function softmaxRows(scores: Float32Array, n: number, k: number): void {
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, scores[o + c]!);
    let sum = 0;
    for (let c = 0; c < k; c++) sum += Math.exp(scores[o + c]! - max);
    for (let c = 0; c < k; c++) scores[o + c] = Math.exp(scores[o + c]! - max) / sum;
  }
}

/** Reads a named flat array from a head state, checking its length. */
export function stateArray(state: HeadState, name: string, length: number): Float32Array {
  const v = state.parameters[name];
  if (!Array.isArray(v) || v.length !== length) {
    throw new RangeError(`head state (${state.kind}): parameter '${name}' must be an array of ${length} numbers`);
  }
  return Float32Array.from(v);
}
