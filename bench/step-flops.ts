/**
 * Floating-point operations of one training step, for the train-step benchmark's GFLOP/s figures: the
 * multiply-adds of the convolutions and linear layers, counted twice (a multiply and an add), times three
 * (forward, input gradient, filter gradient; the first layer's input gradient is counted although no engine
 * computes it, so the figure is a slight overestimate). Element-wise work is left out.
 */
import type { ModelSpec } from '../models/spec.js';

export function trainingStepFlops(spec: ModelSpec, rows: number): number {
  const side = new Map<string, number>([[spec.input, spec.imageSize]]);
  let macs = 0;
  for (const node of spec.nodes) {
    if (node.op === 'add') {
      side.set(node.name, side.get(node.inputs[0])!);
      continue;
    }
    const s = side.get(node.input) ?? 1;
    switch (node.op) {
      case 'conv2d': {
        const out = Math.floor((s + 2 * node.padding - node.kernel) / node.stride) + 1;
        macs += node.outChannels * node.inChannels * node.kernel * node.kernel * out * out;
        side.set(node.name, out);
        break;
      }
      case 'maxpool':
        side.set(node.name, Math.floor((s - node.size) / node.stride) + 1);
        break;
      case 'globalavgpool':
        side.set(node.name, 1);
        break;
      case 'linear':
        macs += node.inFeatures * node.outFeatures;
        side.set(node.name, 1);
        break;
      default:
        side.set(node.name, s);
    }
  }
  return 3 * 2 * macs * rows;
}
