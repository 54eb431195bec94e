/**
 * Batch-norm folding: an eval-mode BatchNorm after a convolution is an affine map per output channel, so
 * it merges into the convolution's weight and bias:
 *   s = gamma / sqrt(running_var + eps),  W' = W * s (per output channel),  b' = (b - running_mean) * s + beta
 * Computed in float64 and rounded once to float32.
 */

export interface BatchNormParams {
  gamma: Float32Array;
  beta: Float32Array;
  runningMean: Float32Array;
  runningVar: Float32Array;
  eps: number;
}

/** Folds `bn` into a convolution with weight [out, in, kh, kw] (PyTorch layout) and optional bias [out]. */
export function foldBatchNorm(
  weight: Float32Array,
  outChannels: number,
  bias: Float32Array | undefined,
  bn: BatchNormParams,
): { weight: Float32Array; bias: Float32Array } {
  if (weight.length % outChannels !== 0) throw new Error(`conv weight of ${weight.length} values is not divisible by ${outChannels} channels`);
  for (const [name, v] of [['gamma', bn.gamma], ['beta', bn.beta], ['running_mean', bn.runningMean], ['running_var', bn.runningVar]] as const) {
    if (v.length !== outChannels) throw new Error(`batch-norm ${name} has ${v.length} values, the convolution ${outChannels} channels`);
  }
  const perChannel = weight.length / outChannels;
  const folded = new Float32Array(weight.length);
  const foldedBias = new Float32Array(outChannels);
  for (let o = 0; o < outChannels; o++) {
    const scale = bn.gamma[o] / Math.sqrt(bn.runningVar[o] + bn.eps);
    const base = o * perChannel;
    for (let k = 0; k < perChannel; k++) folded[base + k] = weight[base + k] * scale;
    foldedBias[o] = ((bias ? bias[o] : 0) - bn.runningMean[o]) * scale + bn.beta[o];
  }
  return { weight: folded, bias: foldedBias };
}
