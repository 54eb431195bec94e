/**
 * A ModelSpec in training mode as ONNX (NCHW, PyTorch-layout parameters as graph inputs), with its reverse
 * pass written from standard ops:
 *
 * - conv: input gradient = Conv of dY with the kernel transposed (in <-> out) and flipped in both spatial
 *   axes; filter gradient = the input transposed to [Ci, N, H, W] and padded once, then per tap a Slice and one
 *   Gemm of dY [Co, N*H*W] against it; bias gradient = sum of dY.
 * - batch-norm: batch statistics (biased variance) and PyTorch's running update (momentum, unbiased variance);
 *   the usual closed-form gradient.
 * - an activation followed by a 2x2 max-pool runs pool-first (exact for a non-decreasing activation, and the
 *   argmax is the same), and the pool's gradient scatters dY through MaxPool's Indices output.
 * - dropout and DropBlock multiply by keep masks that are graph inputs (already rescaled), drawn by the
 *   caller from the same seeded generators as the TensorFlow.js engine.
 */
import { neededNodes } from '../../export/graph.js';
import type { ModelSpec, SpecNode } from '../../models/spec.js';
import { convolution, type ConvLayout } from './conv-layout.js';
import type { GraphBuilder } from './graph-builder.js';

type Node<K extends SpecNode['op']> = Extract<SpecNode, { op: K }>;

export interface MaskInput {
  /** Graph input name. */
  name: string;
  node: Node<'dropout' | 'dropblock'>;
  /** Index of the node in spec.nodes (what the mask seed mixes in). */
  index: number;
  /** NCHW */
  shape: number[];
}

export interface NetworkGraph {
  /** Trainable parameters the graph reads (graph inputs of the same name), in spec order. */
  params: { name: string; shape: number[] }[];
  /** Running statistics read (inputs "<bn>.running_mean" ...) and their updated values (outputs "new:<name>"). */
  running: { name: string; shape: number[] }[];
  masks: MaskInput[];
  /** ONNX value of each spec node's output. */
  value: (node: string) => string;
  shape: (node: string) => number[];
  /** Adds a gradient contribution for a spec node's output. */
  seedGradient: (node: string, grad: string) => void;
  /** Writes the reverse pass; returns the gradient value of every parameter the loss reaches. */
  backward: () => Map<string, string>;
}

const inputsOf = (n: SpecNode): string[] => (n.op === 'add' ? [...n.inputs] : [n.input]);

export function buildNetworkGraph(g: GraphBuilder, spec: ModelSpec, batch: number, outputs: string[], layout: ConvLayout): NetworkGraph {
  const needed = neededNodes(spec, outputs);
  const uses = new Map<string, number>();
  for (const n of spec.nodes) if (needed.has(n.name)) for (const i of inputsOf(n)) uses.set(i, (uses.get(i) ?? 0) + 1);
  for (const o of outputs) uses.set(o, (uses.get(o) ?? 0) + 1);
  const values = new Map<string, string>();
  const shapes = new Map<string, number[]>();
  const images = g.input(spec.input, [batch, spec.inputChannels, spec.imageSize, spec.imageSize]);
  values.set(spec.input, images);
  shapes.set(spec.input, [batch, spec.inputChannels, spec.imageSize, spec.imageSize]);
  const params: NetworkGraph['params'] = [];
  const running: NetworkGraph['running'] = [];
  const masks: MaskInput[] = [];
  const param = (name: string, shape: number[]): string => {
    params.push({ name, shape });
    return g.input(name, shape);
  };
  /** Reverse-pass steps, run last to first; each reads its output's gradient. */
  const tape: { out: string; run: (dy: string) => void }[] = [];
  const grads = new Map<string, string[]>();
  const addGrad = (value: string, grad: string): void => {
    if (value === images) return;
    grads.set(value, [...(grads.get(value) ?? []), grad]);
  };
  const paramGrads = new Map<string, string>();
  const read = (name: string): string => {
    const v = values.get(name);
    if (v === undefined) throw new Error(`model spec uses '${name}' before it is defined`);
    return v;
  };
  const axesNHW = [0, 2, 3];
  const absorbed = new Set<string>();

  spec.nodes.forEach((node, index) => {
    if (!needed.has(node.name) || absorbed.has(node.name)) return;
    const define = (value: string, shape: number[]) => {
      values.set(node.name, value);
      shapes.set(node.name, shape);
    };
    switch (node.op) {
      case 'conv2d': {
        if (node.stride !== 1) throw new Error(`the ONNX Runtime engine supports stride-1 convolutions only ('${node.name}' has stride ${node.stride})`);
        const x = read(node.input);
        const [n, ci, h, w] = shapes.get(node.input)!;
        const k = node.kernel;
        const p = node.padding;
        const ho = h + 2 * p - k + 1;
        const wo = w + 2 * p - k + 1;
        const co = node.outChannels;
        const weight = param(`${node.name}.weight`, [co, ci, k, k]);
        const bias = node.bias ? param(`${node.name}.bias`, [co]) : undefined;
        const y = convolution(g, layout, x, weight, bias, { inChannels: ci, outChannels: co, kernel: k, padding: p }, node.name);
        define(y, [n, co, ho, wo]);
        tape.push({ out: y, run: (dy) => {
          // Filter gradient: taps of the padded input against dY, one Gemm each.
          const dyRows = g.op('Reshape', [g.op('Transpose', [dy], { perm: [1, 0, 2, 3] }), g.ints([co, n * ho * wo])]);
          const xt = g.op('Transpose', [x], { perm: [1, 0, 2, 3] });
          let dw: string;
          if (k === 1 && p === 0) {
            dw = g.op('Reshape', [g.op('Gemm', [dyRows, g.op('Reshape', [xt, g.ints([ci, n * h * w])])], { transB: 1 }), g.ints([co, ci, 1, 1])]);
          } else {
            const xp = p > 0 ? g.op('Pad', [xt, g.ints([0, 0, p, p, 0, 0, p, p])]) : xt;
            const taps: string[] = [];
            for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) {
              const tap = g.op('Slice', [xp, g.ints([a, b]), g.ints([a + ho, b + wo]), g.ints([2, 3])], {}, `${node.name}.tap${a}${b}`);
              const rows = g.op('Reshape', [tap, g.ints([ci, n * ho * wo])]);
              taps.push(g.op('Unsqueeze', [g.op('Gemm', [dyRows, rows], { transB: 1 }, `grad/${node.name}.weight.tap${a}${b}`), g.ints([2])]));
            }
            dw = g.op('Reshape', [g.op('Concat', taps, { axis: 2 }), g.ints([co, ci, k, k])], {}, `grad/${node.name}.weight`);
          }
          paramGrads.set(`${node.name}.weight`, dw);
          if (bias) paramGrads.set(`${node.name}.bias`, g.op('ReduceSum', [dy, g.ints(axesNHW)], { keepdims: 0 }));
          if (x === images) return;
          // Input gradient: a convolution of dY with the transposed, flipped kernel.
          const wt = g.op('Transpose', [weight], { perm: [1, 0, 2, 3] });
          const flipped = k === 1 ? wt : g.op('Slice', [wt, g.ints([-1, -1]), g.ints([-(2 ** 31), -(2 ** 31)]), g.ints([2, 3]), g.ints([-1, -1])]);
          const q = k - 1 - p;
          addGrad(x, convolution(g, layout, dy, flipped, undefined, { inChannels: co, outChannels: ci, kernel: k, padding: q }, `input-grad/${node.name}`));
        } });
        break;
      }
      case 'batchnorm': {
        // Only the centred input is kept for the reverse pass; both directions end in BatchNormalization's
        // one-pass per-channel affine (inference form, fed the batch's variance, or unit variance and eps 0).
        const x = read(node.input);
        const shape = shapes.get(node.input)!;
        const [n, c, h, w] = shape;
        const count = n * h * w;
        const gamma = param(`${node.name}.weight`, [c]);
        const beta = param(`${node.name}.bias`, [c]);
        const runMean = g.input(`${node.name}.running_mean`, [c]);
        const runVar = g.input(`${node.name}.running_var`, [c]);
        running.push({ name: `${node.name}.running_mean`, shape: [c] }, { name: `${node.name}.running_var`, shape: [c] });
        const mean = g.op('ReduceMean', [x], { axes: axesNHW, keepdims: 1 });
        const centered = g.op('Sub', [x, mean]);
        const variance = g.op('Mul', [g.op('ReduceSumSquare', [centered], { axes: axesNHW, keepdims: 1 }), g.scalar(1 / count)]);
        const flat = g.ints([c]);
        const zeros = g.filled(c, 0);
        const ones = g.filled(c, 1);
        const y = g.op('BatchNormalization', [centered, gamma, beta, zeros, g.op('Reshape', [variance, flat])], { epsilon: node.eps }, node.name);
        define(y, shape);
        const m = node.momentum;
        const unbiased = g.op('Mul', [g.op('Reshape', [variance, flat]), g.scalar(count / Math.max(count - 1, 1))]);
        const blend = (old: string, batchStat: string) => g.op('Add', [g.op('Mul', [old, g.scalar(1 - m)]), g.op('Mul', [batchStat, g.scalar(m)])]);
        g.output(`new:${node.name}.running_mean`, blend(runMean, g.op('Reshape', [mean, flat])), [c]);
        g.output(`new:${node.name}.running_var`, blend(runVar, unbiased), [c]);
        tape.push({ out: y, run: (dy) => {
          // dx = gamma rstd (dy - mean(dy) - xhat mean(dy xhat)) = a dy + b centred + shift, per channel.
          const axes = g.ints(axesNHW);
          const rstd = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [variance, g.scalar(node.eps)])])]);
          const dbeta = g.op('ReduceSum', [dy, axes], { keepdims: 1 });
          const dgamma = g.op('Mul', [g.op('ReduceSum', [g.op('Mul', [dy, centered]), axes], { keepdims: 1 }), rstd]);
          paramGrads.set(`${node.name}.bias`, g.op('Reshape', [dbeta, flat]));
          paramGrads.set(`${node.name}.weight`, g.op('Reshape', [dgamma, flat]));
          const a = g.op('Mul', [g.op('Reshape', [gamma, g.ints([1, c, 1, 1])]), rstd]);
          const inv = g.scalar(-1 / count);
          const b = g.op('Reshape', [g.op('Mul', [g.op('Mul', [a, rstd]), g.op('Mul', [dgamma, inv])]), flat]);
          const shift = g.op('Reshape', [g.op('Mul', [a, g.op('Mul', [dbeta, inv])]), flat]);
          const fromCentered = g.op('BatchNormalization', [centered, b, shift, zeros, ones], { epsilon: 0 });
          addGrad(x, g.op('Add', [g.op('Mul', [dy, a]), fromCentered]));
        } });
        break;
      }
      case 'leakyrelu':
      case 'relu': {
        const alpha = node.op === 'leakyrelu' ? node.alpha : 0;
        const activate = (v: string, outName: string) => (node.op === 'leakyrelu' ? g.op('LeakyRelu', [v], { alpha }, outName) : g.op('Relu', [v], {}, outName));
        const activationGrad = (pre: string, dy: string) => g.op('Where', [g.op('Greater', [pre, g.scalar(0)]), dy, alpha === 0 ? g.scalar(0) : g.op('Mul', [dy, g.scalar(alpha)])]);
        const consumers = spec.nodes.filter((n) => needed.has(n.name) && inputsOf(n).includes(node.name));
        const pool = consumers.length === 1 && uses.get(node.name) === 1 && consumers[0].op === 'maxpool' && alpha >= 0 ? consumers[0] : undefined;
        const x = read(node.input);
        const shape = shapes.get(node.input)!;
        if (pool && pool.op === 'maxpool') {
          const [n, c, h, w] = shape;
          const [pooled, indices] = g.opN('MaxPool', [x], 2, { kernel_shape: [pool.size, pool.size], strides: [pool.stride, pool.stride] }, `${pool.name}.pre`);
          const ho = Math.floor((h - pool.size) / pool.stride) + 1;
          const wo = Math.floor((w - pool.size) / pool.stride) + 1;
          const y = activate(pooled, pool.name);
          values.set(pool.name, y);
          shapes.set(pool.name, [n, c, ho, wo]);
          absorbed.add(pool.name);
          tape.push({ out: y, run: (dy) => {
            const dPooled = activationGrad(pooled, dy);
            const total = n * c * h * w;
            const zeros = g.op('ConstantOfShape', [g.ints([total])]);
            const scattered = g.op('ScatterElements', [zeros, g.op('Reshape', [indices, g.ints([-1])]), g.op('Reshape', [dPooled, g.ints([-1])])], { axis: 0 });
            addGrad(x, g.op('Reshape', [scattered, g.ints(shape)]));
          } });
        } else {
          const y = activate(x, node.name);
          define(y, shape);
          tape.push({ out: y, run: (dy) => addGrad(x, activationGrad(x, dy)) });
        }
        break;
      }
      case 'maxpool': {
        const x = read(node.input);
        const shape = shapes.get(node.input)!;
        const [n, c, h, w] = shape;
        const [y, indices] = g.opN('MaxPool', [x], 2, { kernel_shape: [node.size, node.size], strides: [node.stride, node.stride] }, node.name);
        define(y, [n, c, Math.floor((h - node.size) / node.stride) + 1, Math.floor((w - node.size) / node.stride) + 1]);
        tape.push({ out: y, run: (dy) => {
          const zeros = g.op('ConstantOfShape', [g.ints([n * c * h * w])]);
          const scattered = g.op('ScatterElements', [zeros, g.op('Reshape', [indices, g.ints([-1])]), g.op('Reshape', [dy, g.ints([-1])])], { axis: 0 });
          addGrad(x, g.op('Reshape', [scattered, g.ints(shape)]));
        } });
        break;
      }
      case 'add': {
        const [a, b] = node.inputs.map(read);
        const y = g.op('Add', [a, b], {}, node.name);
        define(y, shapes.get(node.inputs[0])!);
        tape.push({ out: y, run: (dy) => { addGrad(a, dy); addGrad(b, dy); } });
        break;
      }
      case 'dropout':
      case 'dropblock': {
        const x = read(node.input);
        const shape = shapes.get(node.input)!;
        const mask = g.input(`mask:${node.name}`, shape);
        masks.push({ name: mask, node, index, shape });
        const y = g.op('Mul', [x, mask], {}, node.name);
        define(y, shape);
        tape.push({ out: y, run: (dy) => addGrad(x, g.op('Mul', [dy, mask])) });
        break;
      }
      case 'globalavgpool': {
        const x = read(node.input);
        const shape = shapes.get(node.input)!;
        const [n, c, h, w] = shape;
        const y = g.op('Flatten', [g.op('GlobalAveragePool', [x])], { axis: 1 }, node.name);
        define(y, [n, c]);
        tape.push({ out: y, run: (dy) => {
          const spread = g.op('Reshape', [g.op('Mul', [dy, g.scalar(1 / (h * w))]), g.ints([n, c, 1, 1])]);
          addGrad(x, g.op('Expand', [spread, g.ints(shape)]));
        } });
        break;
      }
      case 'linear': {
        const x = read(node.input);
        const [n] = shapes.get(node.input)!;
        const weight = param(`${node.name}.weight`, [node.outFeatures, node.inFeatures]);
        const bias = node.bias ? param(`${node.name}.bias`, [node.outFeatures]) : undefined;
        const y = g.op('Gemm', bias ? [x, weight, bias] : [x, weight], { transB: 1 }, node.name);
        define(y, [n, node.outFeatures]);
        tape.push({ out: y, run: (dy) => {
          paramGrads.set(`${node.name}.weight`, g.op('Gemm', [dy, x], { transA: 1 }));
          if (bias) paramGrads.set(`${node.name}.bias`, g.op('ReduceSum', [dy, g.ints([0])], { keepdims: 0 }));
          addGrad(x, g.op('MatMul', [dy, weight]));
        } });
        break;
      }
    }
  });

  const gradientOf = (value: string): string | undefined => {
    const list = grads.get(value);
    if (!list || list.length === 0) return undefined;
    return list.length === 1 ? list[0] : g.op('Sum', list);
  };
  return {
    params, running, masks,
    value: read,
    shape: (name) => shapes.get(name)!,
    seedGradient: (name, grad) => addGrad(read(name), grad),
    backward: () => {
      for (let i = tape.length - 1; i >= 0; i--) {
        const dy = gradientOf(tape[i].out);
        if (dy !== undefined) tape[i].run(dy);
      }
      return paramGrads;
    },
  };
}
