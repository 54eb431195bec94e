/**
 * The step graphs' convolutions of [H, W, N, C] activations behind one interface: 3x3 ones as Winograd
 * F(4x4, 3x3) (winograd.ts) or directly (direct-conv.ts), 1x1 ones as matrix products.
 */
import { directConv, directFilterGrad, directInputGrad } from './direct-conv.js';
import type { GraphBuilder } from './graph-builder.js';
import { winogradConv, winogradFilterGrad, winogradInputGrad } from './winograd.js';

/**
 * How 3x3 convolutions are computed: Winograd F(4x4, 3x3) (about 1e-5 of the largest value from a direct
 * convolution), or directly, one matrix product per tap (about 1e-7; slower).
 */
export type ConvAlgorithm = 'winograd' | 'direct';
export const CONV_ALGORITHMS: readonly ConvAlgorithm[] = ['winograd', 'direct'];

export interface ConvDims {
  /** Input (and output) height and width. */
  h: number;
  w: number;
  n: number;
  inChannels: number;
  outChannels: number;
}

/** A convolution's output [h, w, N, Co] and its two gradients from dY [h, w, N, Co]. */
export interface Convolution {
  y: string;
  /** dW [Co, Ci, k, k] */
  filterGrad: (dy: string, outName?: string) => string;
  /** dX [h, w, N, Ci] */
  inputGrad: (dy: string, outName?: string) => string;
}

/** A stride-1 convolution of x [h, w, N, Ci] with weight [Co, Ci, k, k]: 3x3 with padding 1, or 1x1. */
export function convolution(g: GraphBuilder, algorithm: ConvAlgorithm, kernel: 1 | 3, x: string, weight: string, d: ConvDims, outName?: string): Convolution {
  if (kernel === 1) return pointwise(g, x, weight, d, outName);
  if (algorithm === 'winograd') {
    const forward = winogradConv(g, x, weight, d, outName);
    return {
      y: forward.y,
      filterGrad: (dy, name) => winogradFilterGrad(g, forward.tiles, dy, d, name),
      inputGrad: (dy, name) => winogradInputGrad(g, dy, weight, d, name),
    };
  }
  return {
    y: directConv(g, x, weight, d, outName),
    filterGrad: (dy, name) => directFilterGrad(g, x, dy, d, name),
    inputGrad: (dy, name) => directInputGrad(g, dy, weight, d, name),
  };
}

/** 1x1: rows [h w N, Ci] times the weight [Co, Ci] transposed. */
function pointwise(g: GraphBuilder, x: string, weight: string, d: ConvDims, outName?: string): Convolution {
  const { h, w, n, inChannels: ci, outChannels: co } = d;
  const rows = (v: string, channels: number) => g.op('Reshape', [v, g.ints([h * w * n, channels])]);
  const matrix = g.op('Reshape', [weight, g.ints([co, ci])]);
  return {
    y: g.op('Reshape', [g.op('Gemm', [rows(x, ci), matrix], { transB: 1 }), g.ints([h, w, n, co])], {}, outName),
    filterGrad: (dy, name) => g.op('Reshape', [g.op('Gemm', [rows(dy, co), rows(x, ci)], { transA: 1 }), g.ints([co, ci, 1, 1])], {}, name),
    inputGrad: (dy, name) => g.op('Reshape', [g.op('MatMul', [rows(dy, co), matrix]), g.ints([h, w, n, ci])], {}, name),
  };
}
