/**
 * A ModelSpec in training mode as ONNX, with its reverse pass written from standard ops. Images come in NCHW
 * and parameters in PyTorch's layouts; inside, activations are laid out [H, W, N, C], where every
 * convolution, batch-norm and pool reads contiguous channel rows:
 *
 * - 3x3 convolutions are Winograd F(4x4, 3x3) or direct, forward and reverse; 1x1 convolutions are matrix
 *   products (convolution.ts).
 * - batch-norm: batch statistics (biased variance) and PyTorch's running update (momentum, unbiased variance);
 *   the usual closed-form gradient.
 * - an activation followed by a 2x2 max-pool runs pool-first (exact for a non-decreasing activation, and the
 *   argmax is the same); the pool's gradient goes to each window's first maximum (max-pool.ts).
 * - dropout and DropBlock multiply by keep masks that are graph inputs (NHWC, already rescaled), drawn by the
 *   caller from the same seeded generators as the TensorFlow.js engine.
 */
import { neededNodes } from '../../export/graph.js';
import type { ModelSpec, SpecNode } from '../../models/spec.js';
import { convolution, type ConvAlgorithm } from './convolution.js';
import type { GraphBuilder } from './graph-builder.js';
import { maxPool2x2 } from './max-pool.js';

type Node<K extends SpecNode['op']> = Extract<SpecNode, { op: K }>;

export interface MaskInput {
  /** Graph input name. */
  name: string;
  node: Node<'dropout' | 'dropblock'>;
  /** Index of the node in spec.nodes (what the mask seed mixes in). */
  index: number;
  /** NHWC, the layout the caller feeds it in */
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
  /** A node's output shape as NCHW (or [N, F]), whatever the layout inside the graph. */
  shape: (node: string) => number[];
  /** Adds a gradient contribution for a spec node's output. */
  seedGradient: (node: string, grad: string) => void;
  /** Writes the reverse pass; returns the gradient value of every parameter the loss reaches. */
  backward: () => Map<string, string>;
}

const inputsOf = (n: SpecNode): string[] => (n.op === 'add' ? [...n.inputs] : [n.input]);

export function buildNetworkGraph(g: GraphBuilder, spec: ModelSpec, batch: number, outputs: string[], conv: ConvAlgorithm): NetworkGraph {
  const needed = neededNodes(spec, outputs);
  const uses = new Map<string, number>();
  for (const n of spec.nodes) if (needed.has(n.name)) for (const i of inputsOf(n)) uses.set(i, (uses.get(i) ?? 0) + 1);
  for (const o of outputs) uses.set(o, (uses.get(o) ?? 0) + 1);
  const values = new Map<string, string>();
  const shapes = new Map<string, number[]>();
  const size = spec.imageSize;
  const input = g.input(spec.input, [batch, spec.inputChannels, size, size]);
  const images = g.op('Transpose', [input], { perm: [2, 3, 0, 1] });
  values.set(spec.input, images);
  shapes.set(spec.input, [batch, spec.inputChannels, size, size]);
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
  /** [H, W, N, C] of an NCHW shape */
  const inside = ([n, c, h, w]: number[]) => [h, w, n, c];
  const absorbed = new Set<string>();

  spec.nodes.forEach((node, index) => {
    if (!needed.has(node.name) || absorbed.has(node.name)) return;
    const define = (value: string, shape: number[]) => {
      values.set(node.name, value);
      shapes.set(node.name, shape);
    };
    switch (node.op) {
      case 'conv2d': {
        const k = node.kernel;
        const p = node.padding;
        if (node.stride !== 1 || !((k === 3 && p === 1) || (k === 1 && p === 0))) {
          throw new Error(`the ONNX Runtime engine supports stride-1 convolutions of 3x3 with padding 1 and 1x1 without ('${node.name}' is ${k}x${k}, stride ${node.stride}, padding ${p})`);
        }
        const x = read(node.input);
        const [n, ci, h, w] = shapes.get(node.input)!;
        const co = node.outChannels;
        const weight = param(`${node.name}.weight`, [co, ci, k, k]);
        const bias = node.bias ? param(`${node.name}.bias`, [co]) : undefined;
        const conv2d = convolution(g, conv, k === 1 ? 1 : 3, x, weight, { h, w, n, inChannels: ci, outChannels: co }, bias ? undefined : node.name);
        const y = bias ? g.op('Add', [conv2d.y, bias], {}, node.name) : conv2d.y;
        define(y, [n, co, h, w]);
        tape.push({ out: y, run: (dy) => {
          paramGrads.set(`${node.name}.weight`, conv2d.filterGrad(dy, `grad/${node.name}.weight`));
          if (bias) paramGrads.set(`${node.name}.bias`, g.op('ReduceSum', [dy, g.ints([0, 1, 2])], { keepdims: 0 }));
          if (x !== images) addGrad(x, conv2d.inputGrad(dy, `input-grad/${node.name}`));
        } });
        break;
      }
      case 'batchnorm': {
        // On rows of channels, channels last: [H W N / k, k C], k copies of the channels per row so that rows
        // are at least 256 wide (ONNX Runtime broadcasts a short last axis slowly). Column sums are products
        // with a row of ones (much faster than ReduceSum over the leading axis), and the per-channel affine is
        // Mul and Add (BatchNormalization's kernel walks a channels-last tensor element by element). Only the
        // centred input is kept for the reverse pass.
        const shape = shapes.get(node.input)!;
        const [n, c, h, w] = shape;
        const count = n * h * w;
        let k = 1;
        while (k * c < 256 && count % (2 * k) === 0) k *= 2;
        const rows = count / k;
        const x = g.op('Reshape', [read(node.input), g.ints([rows, k * c])]);
        /** A per-channel vector [C] as a row [k C]. */
        const wide = (v: string) => (k === 1 ? v : g.op('Tile', [v, g.ints([k])]));
        /** Per-channel sums over all H W N positions of v [rows, k C], times `factor`: [C]. */
        const channelSums = (v: string, factor: number) => {
          const sums = g.op('MatMul', [g.filled(rows, factor), v]);
          return k === 1 ? sums : g.op('ReduceSum', [g.op('Reshape', [sums, g.ints([k, c])]), g.ints([0])], { keepdims: 0 });
        };
        const gamma = param(`${node.name}.weight`, [c]);
        const beta = param(`${node.name}.bias`, [c]);
        const runMean = g.input(`${node.name}.running_mean`, [c]);
        const runVar = g.input(`${node.name}.running_var`, [c]);
        running.push({ name: `${node.name}.running_mean`, shape: [c] }, { name: `${node.name}.running_var`, shape: [c] });
        const mean = channelSums(x, 1 / count);
        const centered = g.op('Sub', [x, wide(mean)]);
        const variance = channelSums(g.op('Mul', [centered, centered]), 1 / count);
        const rstd = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [variance, g.scalar(node.eps)])])]);
        const scale = g.op('Mul', [gamma, rstd]);
        const back = g.ints(inside(shape));
        const y = g.op('Reshape', [g.op('Add', [g.op('Mul', [centered, wide(scale)]), wide(beta)]), back], {}, node.name);
        define(y, shape);
        const m = node.momentum;
        const unbiased = g.op('Mul', [variance, g.scalar(count / Math.max(count - 1, 1))]);
        const blend = (old: string, batchStat: string) => g.op('Add', [g.op('Mul', [old, g.scalar(1 - m)]), g.op('Mul', [batchStat, g.scalar(m)])]);
        g.output(`new:${node.name}.running_mean`, blend(runMean, mean), [c]);
        g.output(`new:${node.name}.running_var`, blend(runVar, unbiased), [c]);
        tape.push({ out: y, run: (dyIn) => {
          // dx = gamma rstd (dy - mean(dy) - xhat mean(dy xhat)) = scale dy + b centred + shift, per channel.
          const dy = g.op('Reshape', [dyIn, g.ints([rows, k * c])]);
          const dbeta = channelSums(dy, 1);
          const dgamma = g.op('Mul', [channelSums(g.op('Mul', [dy, centered]), 1), rstd]);
          paramGrads.set(`${node.name}.bias`, dbeta);
          paramGrads.set(`${node.name}.weight`, dgamma);
          const inv = g.scalar(-1 / count);
          const b = g.op('Mul', [g.op('Mul', [scale, rstd]), g.op('Mul', [dgamma, inv])]);
          const shift = g.op('Mul', [scale, g.op('Mul', [dbeta, inv])]);
          const fromCentered = g.op('Add', [g.op('Mul', [centered, wide(b)]), wide(shift)]);
          addGrad(read(node.input), g.op('Reshape', [g.op('Add', [g.op('Mul', [dy, wide(scale)]), fromCentered]), back]));
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
          const pooled = maxPool(pool, x, shape, `${pool.name}.pre`);
          const y = activate(pooled.y, pool.name);
          values.set(pool.name, y);
          shapes.set(pool.name, pooled.shape);
          absorbed.add(pool.name);
          tape.push({ out: y, run: (dy) => addGrad(x, pooled.grad(activationGrad(pooled.y, dy))) });
        } else {
          const y = activate(x, node.name);
          define(y, shape);
          tape.push({ out: y, run: (dy) => addGrad(x, activationGrad(x, dy)) });
        }
        break;
      }
      case 'maxpool': {
        const x = read(node.input);
        const pooled = maxPool(node, x, shapes.get(node.input)!, node.name);
        define(pooled.y, pooled.shape);
        tape.push({ out: pooled.y, run: (dy) => addGrad(x, pooled.grad(dy)) });
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
        const [n, c, h, w] = shape;
        const mask = g.input(`mask:${node.name}`, [n, h, w, c]);
        masks.push({ name: mask, node, index, shape: [n, h, w, c] });
        const keep = g.op('Transpose', [mask], { perm: [1, 2, 0, 3] });
        const y = g.op('Mul', [x, keep], {}, node.name);
        define(y, shape);
        tape.push({ out: y, run: (dy) => addGrad(x, g.op('Mul', [dy, keep])) });
        break;
      }
      case 'globalavgpool': {
        const x = read(node.input);
        const shape = shapes.get(node.input)!;
        const [n, c, h, w] = shape;
        const y = g.op('ReduceMean', [x], { axes: [0, 1], keepdims: 0 }, node.name);
        define(y, [n, c]);
        tape.push({ out: y, run: (dy) => {
          const spread = g.op('Reshape', [g.op('Mul', [dy, g.scalar(1 / (h * w))]), g.ints([1, 1, n, c])]);
          addGrad(x, g.op('Expand', [spread, g.ints(inside(shape))]));
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

  function maxPool(node: Node<'maxpool'>, x: string, shape: number[], outName: string) {
    if (node.size !== 2 || node.stride !== 2) throw new Error(`the ONNX Runtime engine supports 2x2 max-pooling with stride 2 only ('${node.name}' is ${node.size}x${node.size}, stride ${node.stride})`);
    const [n, c, h, w] = shape;
    return { ...maxPool2x2(g, x, [h, w, n, c], outName), shape: [n, c, Math.floor(h / 2), Math.floor(w / 2)] };
  }

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
