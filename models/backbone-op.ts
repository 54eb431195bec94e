/**
 * The whole backbone (input images -> pooled features) as ONE taped TensorFlow.js op in training mode, with
 * its own reverse pass.
 *
 * Why: TensorFlow.js keeps every taped intermediate and the gradient of every taped tensor alive until the
 * whole backward pass ends. For a full ResNet-12 step on 256 images of 32x32 that exceeds the 4 GiB
 * WebAssembly heap. Here the forward pass runs untaped, keeping only what the reverse pass reads (conv
 * inputs, conv outputs before batch-norm, activations, pooling and dropout masks), and the reverse pass
 * frees each gradient as soon as it has been propagated. The classifier heads stay ordinary taped ops.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { SpecNode } from './spec.js';
import { conv2dGradients } from './conv-grad.js';
import { convBnActBackward, convBnActForward, leakyReluBackward, leakyReluForward, type ConvBnOptions, type RunningStats } from './fused.js';

type Node<K extends SpecNode['op']> = Extract<SpecNode, { op: K }>;

export interface BackboneContext {
  /** Backbone nodes in order; the last one produces `output`. */
  nodes: SpecNode[];
  input: string;
  output: string;
  /** conv nodes fused with the batch-norm (and activation) that alone consume them. */
  fused: Map<string, { bn: Node<'batchnorm'>; act: SpecNode | null }>;
  fusedAway: Set<string>;
  param(name: string): tf.Variable;
  running(bnName: string): RunningStats;
  /** The multiplicative mask of a dropout/DropBlock node for this call, or null for identity. */
  mask(node: Node<'dropout'> | Node<'dropblock'>, index: number, shape: number[]): tf.Tensor | null;
}

/** Whether the op supports every node of a backbone (else the model runs op by op). */
export function backboneSupported(ctx: Pick<BackboneContext, 'nodes' | 'fused' | 'fusedAway'>): boolean {
  return ctx.nodes.every((n) => {
    if (ctx.fusedAway.has(n.name)) return true;
    return ['conv2d', 'leakyrelu', 'relu', 'add', 'maxpool', 'dropout', 'dropblock', 'globalavgpool'].includes(n.op)
      && !(n.op === 'leakyrelu' && n.alpha < 0);
  });
}

/** One reverse-pass step; tensors are indices into the saved list. */
type Record =
  | { kind: 'convbn'; input: string; output: string; saved: number[]; params: string[]; hasBias: boolean; opts: ConvBnOptions }
  | { kind: 'conv'; input: string; output: string; saved: number[]; params: string[]; hasBias: boolean; stride: number; padding: number }
  | { kind: 'act'; input: string; output: string; saved: number[]; alpha: number }
  | { kind: 'add'; inputs: [string, string]; output: string }
  | { kind: 'maxpool'; input: string; output: string; saved: number[]; size: number; stride: number }
  | { kind: 'mask'; input: string; output: string; saved: number[] }
  | { kind: 'gap'; input: string; output: string; shape: number[] };

/** The trainable parameters the backbone reads, in a stable order. */
export function backboneParamNames(ctx: Pick<BackboneContext, 'nodes' | 'fused'>): string[] {
  const names: string[] = [];
  for (const n of ctx.nodes) {
    if (n.op !== 'conv2d') continue;
    names.push(`${n.name}.weight`);
    if (n.bias) names.push(`${n.name}.bias`);
    const f = ctx.fused.get(n.name);
    if (f) names.push(`${f.bn.name}.weight`, `${f.bn.name}.bias`);
  }
  return names;
}

/** Runs the backbone in training mode; returns the output node's tensor (e.g. features [N, C]). */
export function backboneTrain(ctx: BackboneContext, x: tf.Tensor4D): tf.Tensor {
  const paramNames = backboneParamNames(ctx);
  const params = paramNames.map((n) => ctx.param(n));
  const records: Record[] = [];
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const toSave: tf.Tensor[] = [];
    const keep = (...ts: tf.Tensor[]) => ts.map((t) => toSave.push(t) - 1);
    const values = new Map<string, tf.Tensor>([[ctx.input, args[0] as tf.Tensor]]);
    const get = (name: string) => values.get(name)!;
    ctx.nodes.forEach((node, index) => {
      if (ctx.fusedAway.has(node.name)) return;
      switch (node.op) {
        case 'conv2d': {
          const w = ctx.param(`${node.name}.weight`) as tf.Tensor4D;
          const bias = node.bias ? (ctx.param(`${node.name}.bias`) as tf.Tensor1D) : null;
          const xin = get(node.input) as tf.Tensor4D;
          const fused = ctx.fused.get(node.name);
          if (fused) {
            const { bn, act } = fused;
            const opts: ConvBnOptions = { stride: node.stride, padding: node.padding, eps: bn.eps, momentum: bn.momentum, alpha: act === null ? null : act.op === 'leakyrelu' ? act.alpha : 0 };
            const g = ctx.param(`${bn.name}.weight`) as tf.Tensor1D;
            const out = convBnActForward(xin, w, g, ctx.param(`${bn.name}.bias`) as tf.Tensor1D, bias, ctx.running(bn.name), opts);
            const s = out.saved;
            const output = act?.name ?? bn.name;
            values.set(output, out.y);
            const params = [`${node.name}.weight`, `${bn.name}.weight`, `${bn.name}.bias`, ...(bias ? [`${node.name}.bias`] : [])];
            // The output is kept only when the activation's backward needs it; -1 marks "not kept".
            const kept = keep(s.x, s.w, s.z, s.mean, s.invStd, s.gamma);
            const yIndex = s.y ? keep(s.y)[0] : -1;
            records.push({ kind: 'convbn', input: node.input, output, saved: [kept[0], kept[1], kept[2], yIndex, kept[3], kept[4], kept[5]], params, hasBias: !!bias, opts });
          } else {
            let z = tf.conv2d(xin, w, node.stride, node.padding);
            if (bias) z = tf.add(z, bias);
            values.set(node.name, z);
            records.push({ kind: 'conv', input: node.input, output: node.name, saved: keep(xin, w), params: [`${node.name}.weight`, ...(bias ? [`${node.name}.bias`] : [])], hasBias: !!bias, stride: node.stride, padding: node.padding });
          }
          return;
        }
        case 'leakyrelu':
        case 'relu': {
          const alpha = node.op === 'relu' ? 0 : node.alpha;
          const y = leakyReluForward(get(node.input), alpha);
          values.set(node.name, y);
          records.push({ kind: 'act', input: node.input, output: node.name, saved: keep(y), alpha });
          return;
        }
        case 'add':
          values.set(node.name, tf.add(get(node.inputs[0]), get(node.inputs[1])));
          records.push({ kind: 'add', inputs: node.inputs, output: node.name });
          return;
        case 'maxpool': {
          const xin = get(node.input) as tf.Tensor4D;
          const y = tf.maxPool(xin, node.size, node.stride, 'valid');
          values.set(node.name, y);
          records.push({ kind: 'maxpool', input: node.input, output: node.name, saved: keep(xin, y), size: node.size, stride: node.stride });
          return;
        }
        case 'dropout':
        case 'dropblock': {
          const xin = get(node.input);
          const mask = ctx.mask(node, index, xin.shape);
          values.set(node.name, mask ? tf.mul(xin, mask) : xin);
          records.push({ kind: 'mask', input: node.input, output: node.name, saved: mask ? keep(mask) : [] });
          return;
        }
        case 'globalavgpool': {
          const xin = get(node.input);
          values.set(node.name, tf.mean(xin, [1, 2]));
          records.push({ kind: 'gap', input: node.input, output: node.name, shape: xin.shape });
          return;
        }
        default:
          throw new Error(`backboneTrain: unsupported node ${node.op} '${node.name}'`);
      }
    });
    save(toSave);
    return { value: get(ctx.output), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => reverse(dy, saved) };
  });

  const reverse = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
    const grads = new Map<string, tf.Tensor>([[ctx.output, dy]]);
    const paramGrads = new Map<string, tf.Tensor>();
    const accumulate = (name: string, g: tf.Tensor) => {
      const prev = grads.get(name);
      if (!prev) grads.set(name, g);
      else {
        grads.set(name, tf.add(prev, g));
        if (prev !== dy) prev.dispose();
        g.dispose();
      }
    };
    for (let i = records.length - 1; i >= 0; i--) {
      const r = records[i];
      const g = grads.get(r.output);
      if (!g) continue;
      grads.delete(r.output);
      const S = (k: number) => saved[(r as { saved: number[] }).saved[k]];
      switch (r.kind) {
        case 'convbn': {
          const [dx, dw, dg, db, dbias] = tf.tidy(() => convBnActBackward(g as tf.Tensor4D, {
            x: S(0) as tf.Tensor4D, w: S(1) as tf.Tensor4D, z: S(2) as tf.Tensor4D, y: r.saved[3] < 0 ? null : (S(3) as tf.Tensor4D), mean: S(4) as tf.Tensor1D, invStd: S(5) as tf.Tensor1D, gamma: S(6) as tf.Tensor1D,
          }, r.hasBias, r.opts));
          [dw, dg, db, ...(r.hasBias ? [dbias] : [])].forEach((t, k) => paramGrads.set(r.params[k], t));
          accumulate(r.input, dx);
          break;
        }
        case 'conv': {
          const [dx, dw, dbias] = tf.tidy(() => {
            const { dx, dw } = conv2dGradients(S(0) as tf.Tensor4D, S(1) as tf.Tensor4D, g as tf.Tensor4D, { stride: r.stride, padding: r.padding });
            return r.hasBias ? [dx, dw, tf.sum(g, [0, 1, 2])] : [dx, dw];
          });
          paramGrads.set(r.params[0], dw);
          if (r.hasBias) paramGrads.set(r.params[1], dbias);
          accumulate(r.input, dx);
          break;
        }
        case 'act':
          accumulate(r.input, tf.tidy(() => leakyReluBackward(g, S(0), r.alpha)));
          break;
        case 'add':
          accumulate(r.inputs[0], tf.clone(g));
          accumulate(r.inputs[1], tf.clone(g));
          break;
        case 'maxpool':
          accumulate(r.input, tf.engine().runKernel('MaxPoolGrad', { dy: g, input: S(0), output: S(1) },
            { filterSize: r.size, strides: r.stride, pad: 'valid', dimRoundingMode: undefined } as never) as tf.Tensor);
          break;
        case 'mask':
          accumulate(r.input, r.saved.length ? tf.mul(g, S(0)) : tf.clone(g));
          break;
        case 'gap': {
          const [n, h, w, c] = r.shape;
          accumulate(r.input, tf.tidy(() => tf.tile(tf.reshape(tf.div(g, h * w), [n, 1, 1, c]), [1, h, w, 1])));
          break;
        }
      }
      if (g !== dy) g.dispose();
    }
    const dx = grads.get(ctx.input) ?? tf.zerosLike(x);
    for (const [name, t] of grads) if (name !== ctx.input && t !== dy) t.dispose();
    return [dx, ...paramNames.map((n, k) => paramGrads.get(n) ?? tf.zerosLike(params[k]))];
  };
  return f(x, ...params);
}
