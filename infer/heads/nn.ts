/**
 * Nearest neighbour under cosine similarity: a query takes the label of the most similar support row. On
 * L2-normalised features this is the same as the Euclidean nearest neighbour. Probabilities are one-hot.
 */
import { cosineScores } from './proto.js';
import { checkFitArguments, checkPredictArguments, stateArray, type Head, type HeadState } from './types.js';

export class NearestNeighborHead implements Head {
  readonly kind = 'nn' as const;
  /** The support rows, L2-normalised (count x dim). */
  support: Float32Array = new Float32Array(0);
  supportLabels: Int32Array = new Int32Array(0);
  numClasses = 0;
  dim = 0;

  fit(x: Float32Array, n: number, d: number, labels: Int32Array, numClasses: number): void {
    checkFitArguments(x, n, d, labels, numClasses);
    const support = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      let norm = 0;
      for (let c = 0; c < d; c++) norm += x[i * d + c]! ** 2;
      const inv = 1 / Math.max(Math.sqrt(norm), 1e-12);
      for (let c = 0; c < d; c++) support[i * d + c] = x[i * d + c]! * inv;
    }
    this.support = support;
    this.supportLabels = Int32Array.from(labels);
    this.numClasses = numClasses;
    this.dim = d;
  }

  predict(x: Float32Array, n: number): Int32Array {
    checkPredictArguments(x, n, this.dim);
    const m = this.supportLabels.length;
    const s = cosineScores(x, n, this.support, m, this.dim);
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let j = 1; j < m; j++) if (s[i * m + j]! > s[i * m + best]!) best = j;
      out[i] = this.supportLabels[best]!;
    }
    return out;
  }

  predictProba(x: Float32Array, n: number): Float32Array {
    const pred = this.predict(x, n);
    const out = new Float32Array(n * this.numClasses);
    for (let i = 0; i < n; i++) out[i * this.numClasses + pred[i]!] = 1;
    return out;
  }

  /** parameters: support (count*dim, unit rows), labels (count). */
  toJSON(): HeadState {
    return {
      kind: 'nn', version: 1, numClasses: this.numClasses, dim: this.dim,
      parameters: { support: Array.from(this.support), labels: Array.from(this.supportLabels) },
    };
  }

  static fromJSON(state: HeadState): NearestNeighborHead {
    const labels = state.parameters.labels;
    if (!Array.isArray(labels)) throw new RangeError("head state (nn): parameter 'labels' must be an array");
    const head = new NearestNeighborHead();
    head.numClasses = state.numClasses;
    head.dim = state.dim;
    head.support = stateArray(state, 'support', labels.length * state.dim);
    head.supportLabels = Int32Array.from(labels);
    for (const y of head.supportLabels) {
      if (y < 0 || y >= state.numClasses) throw new RangeError(`head state (nn): label ${y} outside 0..${state.numClasses - 1}`);
    }
    return head;
  }
}
