/**
 * 3x3, stride-1, padding-1 convolutions of [H, W, N, C] activations computed directly: one matrix product
 * per kernel tap, [H W N, Ci] x [Ci, Co], accumulated in Gemm's C input. Slower than Winograd (winograd.ts)
 * but with a direct convolution's rounding (about 1e-7 of the largest value), for runs compared closely
 * against another implementation.
 */
import type { ConvDims } from './convolution.js';
import type { GraphBuilder } from './graph-builder.js';

const TAPS = [0, 1, 2].flatMap((a) => [0, 1, 2].map((b) => [a, b] as const));

/** The padded input's window at tap (a, b), as rows [h w N, X]. */
function tapRows(g: GraphBuilder, padded: string, a: number, b: number, d: ConvDims, x: number): string {
  const window = g.op('Slice', [padded, g.ints([a, b]), g.ints([a + d.h, b + d.w]), g.ints([0, 1])]);
  return g.op('Reshape', [window, g.ints([d.h * d.w * d.n, x])]);
}

const pad = (g: GraphBuilder, x: string) => g.op('Pad', [x, g.ints([1, 1, 0, 0, 1, 1, 0, 0])]);

/** The kernel's taps [9, Co, Ci] (a 2-D transpose of weight [Co Ci, 9]). */
const kernelTaps = (g: GraphBuilder, weight: string, d: ConvDims) =>
  g.op('Reshape', [g.op('Transpose', [g.op('Reshape', [weight, g.ints([d.outChannels * d.inChannels, 9])])], { perm: [1, 0] }), g.ints([9, d.outChannels, d.inChannels])]);

/** Σ over taps k of x's window times the matrix taps[tap(k)] (transposed if `transB`): [h, w, N, to]. */
function sumOverTaps(g: GraphBuilder, x: string, taps: string, d: ConvDims, from: number, to: number, tap: (k: number) => number, transB: 0 | 1, outName?: string): string {
  const padded = pad(g, x);
  let sum = '';
  TAPS.forEach(([a, b], k) => {
    const matrix = g.op('Reshape', [g.op('Gather', [taps, g.ints([tap(k)])], { axis: 0 }), g.ints(transB ? [to, from] : [from, to])]);
    const product = [tapRows(g, padded, a, b, d, from), matrix];
    sum = g.op('Gemm', sum ? [...product, sum] : product, { transB });
  });
  return g.op('Reshape', [sum, g.ints([d.h, d.w, d.n, to])], {}, outName);
}

/** y = conv(x, weight) for x [h, w, N, Ci] and weight [Co, Ci, 3, 3]. */
export function directConv(g: GraphBuilder, x: string, weight: string, d: ConvDims, outName?: string): string {
  return sumOverTaps(g, x, kernelTaps(g, weight, d), d, d.inChannels, d.outChannels, (k) => k, 1, outName);
}

/** dX [h, w, N, Ci]: dY convolved with the flipped, transposed kernel (tap k of the flip is tap 8 - k). */
export function directInputGrad(g: GraphBuilder, dy: string, weight: string, d: ConvDims, outName?: string): string {
  return sumOverTaps(g, dy, kernelTaps(g, weight, d), d, d.outChannels, d.inChannels, (k) => 8 - k, 0, outName);
}

/** dW [Co, Ci, 3, 3]: per tap, dY rows [h w N, Co] against the input's window. */
export function directFilterGrad(g: GraphBuilder, x: string, dy: string, d: ConvDims, outName?: string): string {
  const padded = pad(g, x);
  const dyRows = g.op('Reshape', [dy, g.ints([d.h * d.w * d.n, d.outChannels])]);
  const perTap = TAPS.map(([a, b]) => g.op('Unsqueeze', [g.op('Gemm', [dyRows, tapRows(g, padded, a, b, d, d.inChannels)], { transA: 1 }), g.ints([2])]));
  return g.op('Reshape', [g.op('Concat', perTap, { axis: 2 }), g.ints([d.outChannels, d.inChannels, 3, 3])], {}, outName);
}
