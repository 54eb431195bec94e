/**
 * Floating-point operations of one training step, for the train-step benchmark's GFLOP/s figures: the
 * multiply-adds of the convolutions and linear layers, counted twice (a multiply and an add), times three
 * (forward, input gradient, filter gradient; the first layer's input gradient is counted although no engine
 * computes it, so the figure is a slight overestimate). Element-wise work is left out.
 */
import { nodeShapes } from '../models/spec-shapes.js';
import type { ModelSpec } from '../models/spec.js';

export function trainingStepFlops(spec: ModelSpec, rows: number): number {
  const shapes = nodeShapes(spec);
  let macs = 0;
  for (const node of spec.nodes) {
    if (node.op === 'conv2d') {
      const [, h, w] = shapes.get(node.name)!;
      macs += node.outChannels * node.inChannels * node.kernel * node.kernel * h * w;
    } else if (node.op === 'linear') {
      macs += node.inFeatures * node.outFeatures;
    }
  }
  return 3 * 2 * macs * rows;
}
