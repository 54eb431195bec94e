/**
 * 2x2, stride-2 max-pooling of [H, W, N, C] activations (ONNX's MaxPool wants the spatial axes last), and its
 * gradient, which goes to the first maximum of each window in row-major order, as PyTorch's does.
 */
import type { GraphBuilder } from './graph-builder.js';

export interface MaxPool {
  /** [H / 2, W / 2, N, C] (odd sizes drop the last row or column, as MaxPool does) */
  y: string;
  grad: (dy: string) => string;
}

export function maxPool2x2(g: GraphBuilder, x: string, [h, w, n, c]: number[], outName?: string): MaxPool {
  const ho = Math.floor(h / 2);
  const wo = Math.floor(w / 2);
  const even = ho * 2 === h && wo * 2 === w ? x : g.op('Slice', [x, g.ints([0, 0]), g.ints([2 * ho, 2 * wo]), g.ints([0, 1])]);
  const windows = g.op('Reshape', [even, g.ints([ho, 2, wo, 2, n * c])]);
  const pooled = g.op('ReduceMax', [windows], { axes: [1, 3], keepdims: 1 });
  const y = g.op('Reshape', [pooled, g.ints([ho, wo, n, c])], {}, outName);
  return {
    y,
    grad: (dy) => {
      const isMax = g.op('Equal', [windows, pooled]);
      const at = (a: number, b: number) => g.op('Slice', [isMax, g.ints([a, b]), g.ints([a + 1, b + 1]), g.ints([1, 3])]);
      const spread = g.op('Reshape', [dy, g.ints([ho, 1, wo, 1, n * c])]);
      const zero = g.scalar(0);
      let taken: string | undefined;
      const part: string[] = [];
      for (const [a, b] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
        const hit = at(a, b);
        const first = taken === undefined ? hit : g.op('And', [hit, g.op('Not', [taken])]);
        part.push(g.op('Where', [first, spread, zero]));
        if (b + a < 2) taken = taken === undefined ? hit : g.op('Or', [taken, hit]);
      }
      const rows = [0, 1].map((a) => g.op('Concat', [part[2 * a], part[2 * a + 1]], { axis: 3 }));
      const dx = g.op('Reshape', [g.op('Concat', rows, { axis: 1 }), g.ints([2 * ho, 2 * wo, n, c])]);
      return ho * 2 === h && wo * 2 === w ? dx : g.op('Pad', [dx, g.ints([0, 0, 0, 0, h - 2 * ho, w - 2 * wo, 0, 0])]);
    },
  };
}
