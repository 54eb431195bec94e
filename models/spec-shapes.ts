/** The output shape of every node of a ModelSpec for one image: [C, H, W] for feature maps, [F] for vectors. */
import type { ModelSpec } from './spec.js';

export function nodeShapes(spec: ModelSpec): Map<string, number[]> {
  const shapes = new Map<string, number[]>([[spec.input, [spec.inputChannels, spec.imageSize, spec.imageSize]]]);
  for (const node of spec.nodes) {
    if (node.op === 'add') {
      shapes.set(node.name, shapes.get(node.inputs[0])!);
      continue;
    }
    const [c, h, w] = shapes.get(node.input)!;
    switch (node.op) {
      case 'conv2d': {
        const side = (s: number) => Math.floor((s + 2 * node.padding - node.kernel) / node.stride) + 1;
        shapes.set(node.name, [node.outChannels, side(h), side(w)]);
        break;
      }
      case 'maxpool': {
        const side = (s: number) => Math.floor((s - node.size) / node.stride) + 1;
        shapes.set(node.name, [c, side(h), side(w)]);
        break;
      }
      case 'globalavgpool':
        shapes.set(node.name, [c]);
        break;
      case 'linear':
        shapes.set(node.name, [node.outFeatures]);
        break;
      default:
        shapes.set(node.name, shapes.get(node.input)!);
    }
  }
  return shapes;
}
