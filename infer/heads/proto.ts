/**
 * Nearest class mean under cosine similarity: each class's prototype is the mean of its (L2-normalised) support
 * rows; a query goes to the prototype with the highest cosine similarity. Probabilities are
 * softmax(scale * cosine) with scale = 10 by default (cosines lie in [-1, 1], so a scale of about 10 turns them into
 * usefully peaked probabilities; the ranking, and so the prediction, does not depend on it).
 */
import { argmaxRows, checkFitArguments, checkPredictArguments, softmaxRows, stateArray, type Head, type HeadState } from './types.js';

export const DEFAULT_PROTO_SCALE = 10;

export class PrototypeHead implements Head {
  readonly kind = 'proto' as const;
  /** numClasses x dim unit-norm prototypes (a class without rows has a zero prototype). */
  prototypes: Float32Array = new Float32Array(0);
  numClasses = 0;
  dim = 0;

  constructor(readonly scale = DEFAULT_PROTO_SCALE) {}

  fit(x: Float32Array, n: number, d: number, labels: Int32Array, numClasses: number): void {
    checkFitArguments(x, n, d, labels, numClasses);
    const sums = new Float64Array(numClasses * d);
    for (let i = 0; i < n; i++) {
      const xo = i * d;
      let norm = 0;
      for (let c = 0; c < d; c++) norm += x[xo + c]! * x[xo + c]!;
      const inv = 1 / Math.max(Math.sqrt(norm), 1e-12);
      const po = labels[i]! * d;
      for (let c = 0; c < d; c++) sums[po + c] = sums[po + c]! + x[xo + c]! * inv;
    }
    const prototypes = new Float32Array(numClasses * d);
    for (let k = 0; k < numClasses; k++) {
      let norm = 0;
      for (let c = 0; c < d; c++) norm += sums[k * d + c]! ** 2;
      const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
      for (let c = 0; c < d; c++) prototypes[k * d + c] = sums[k * d + c]! * inv;
    }
    this.prototypes = prototypes;
    this.numClasses = numClasses;
    this.dim = d;
  }

  /** Cosine similarity of each row to each prototype (n x numClasses). */
  similarities(x: Float32Array, n: number): Float32Array {
    checkPredictArguments(x, n, this.dim);
    return cosineScores(x, n, this.prototypes, this.numClasses, this.dim);
  }

  predictProba(x: Float32Array, n: number): Float32Array {
    const s = this.similarities(x, n);
    for (let j = 0; j < s.length; j++) s[j] = s[j]! * this.scale;
    softmaxRows(s, n, this.numClasses);
    return s;
  }

  predict(x: Float32Array, n: number): Int32Array {
    return argmaxRows(this.similarities(x, n), n, this.numClasses);
  }

  /** parameters: prototypes (numClasses*dim, unit rows), scale. */
  toJSON(): HeadState {
    return { kind: 'proto', version: 1, numClasses: this.numClasses, dim: this.dim, parameters: { scale: this.scale, prototypes: Array.from(this.prototypes) } };
  }

  static fromJSON(state: HeadState): PrototypeHead {
    const scale = typeof state.parameters.scale === 'number' ? state.parameters.scale : DEFAULT_PROTO_SCALE;
    const head = new PrototypeHead(scale);
    head.numClasses = state.numClasses;
    head.dim = state.dim;
    head.prototypes = stateArray(state, 'prototypes', state.numClasses * state.dim);
    return head;
  }
}

/** Cosine similarity of each of the n rows of x to each of the m unit-norm rows of `refs` (n x m). */
export function cosineScores(x: Float32Array, n: number, refs: Float32Array, m: number, d: number): Float32Array {
  const out = new Float32Array(n * m);
  for (let i = 0; i < n; i++) {
    const xo = i * d;
    let norm = 0;
    for (let c = 0; c < d; c++) norm += x[xo + c]! * x[xo + c]!;
    const inv = 1 / Math.max(Math.sqrt(norm), 1e-12);
    for (let k = 0; k < m; k++) {
      const ro = k * d;
      let s = 0;
      for (let c = 0; c < d; c++) s += x[xo + c]! * refs[ro + c]!;
      out[i * m + k] = s * inv;
    }
  }
  return out;
}
