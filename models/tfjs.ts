/**
 * The TensorFlow.js forward pass of a ModelSpec, in training and evaluation modes.
 *
 * Internal layouts are the fast ones for TensorFlow.js (NHWC activations, HWIO conv filters, [in, out]
 * linear weights); getWeights/setWeights speak PyTorch layout (models/spec.ts), so checkpoints, the
 * exporter and the reference weights never see the internal one.
 *
 * Training mode follows the reference: batch-norm normalises with the biased batch variance and updates
 * the running statistics as PyTorch does (running = (1 - m) * running + m * batch, the variance term
 * unbiased); dropout and DropBlock are active. Evaluation mode uses the running statistics and no dropout.
 *
 * Dropout and DropBlock masks hold no hidden generator state: each mask is drawn with a seed derived from
 * (dropoutSeed, dropBlockCalls, node index). Restoring dropoutSeed and dropBlockCalls on resume therefore
 * reproduces the masks of an uninterrupted run.
 */
import * as tf from '@tensorflow/tfjs-core';
import { conv2d } from './conv-grad.js';
import { specParameters, type ModelSpec, type NamedWeights, type SpecNode } from './spec.js';
import { dropBlockKeepRate, trainingMask } from './masks.js';
import { batchNormTraining } from './tfjs-ops.js';
import { convBnAct, leakyReluForward, leakyReluFused } from './fused.js';
import { backboneSupported, backboneTrain, type BackboneContext } from './backbone-op.js';

export interface ForwardOutput {
  /** Pooled backbone features [N, featureDim] (what few-shot evaluation uses). */
  features: tf.Tensor2D;
  /** Class logits [N, numClasses]. */
  logits: tf.Tensor2D;
  /** Rotation logits [N, 4]. */
  rotLogits: tf.Tensor2D;
}

export interface TfModelOptions {
  /** Seed of the dropout/DropBlock masks (default 0). */
  dropoutSeed?: number;
  /**
   * Training mode: run conv -> batch-norm -> activation as one op with a hand-written gradient (default
   * true; it keeps far fewer tensors alive). false computes the same function op by op.
   */
  fuse?: boolean;
}

type ParamKind = 'weight' | 'bias' | 'running_mean' | 'running_var';
interface ParamEntry { name: string; torchShape: number[]; kind: ParamKind; variable: tf.Variable }

let instances = 0;

export class TfModel {
  readonly spec: ModelSpec;
  /**
   * Forward calls in training mode so far (the reference's num_batches_tracked, which drives the DropBlock
   * keep rate). Settable, for resuming a run.
   */
  dropBlockCalls = 0;
  /** Seed of the dropout/DropBlock masks; part of the state a checkpoint must keep. */
  dropoutSeed: number;
  private readonly entries = new Map<string, ParamEntry>();
  private readonly trainable: ParamEntry[] = [];
  /** Training mode: conv nodes fused with the batch-norm (and activation) that alone consume them. */
  private readonly fusedAfterConv = new Map<string, { bn: Extract<SpecNode, { op: 'batchnorm' }>; act: SpecNode | null }>();
  /** Nodes computed as part of a fused group in training mode. */
  private readonly fusedAway = new Set<string>();
  /** Training mode: the backbone (input -> features) run as one op with its own reverse pass, if supported. */
  private backbone: BackboneContext | null = null;
  private disposed = false;

  constructor(spec: ModelSpec, weights: NamedWeights, opts: TfModelOptions = {}) {
    this.spec = spec;
    this.dropoutSeed = opts.dropoutSeed ?? 0;
    validateWeights(spec, weights);
    const prefix = `skd_model_${instances++}/`;
    for (const p of specParameters(spec)) {
      const w = weights.get(p.name)!;
      const trainable = p.kind === 'weight' || p.kind === 'bias';
      const variable = tf.variable(toInternal(w.data, p.shape), trainable, prefix + p.name);
      const entry: ParamEntry = { name: p.name, torchShape: p.shape, kind: p.kind, variable };
      this.entries.set(p.name, entry);
      if (trainable) this.trainable.push(entry);
    }
    if (opts.fuse ?? true) {
      this.planFusion();
      this.planBackbone();
    }
  }

  private planBackbone(): void {
    const { nodes, outputs } = this.spec;
    const end = nodes.findIndex((n) => n.name === outputs.features);
    if (end < 0) return;
    const inside = new Set(nodes.slice(0, end).map((n) => n.name));
    const after = nodes.slice(end + 1);
    const leaks = after.some((n) => (n.op === 'add' ? n.inputs : [n.input]).some((i) => inside.has(i)))
      || [outputs.logits, outputs.rot_logits].some((o) => inside.has(o));
    const ctx: BackboneContext = {
      nodes: nodes.slice(0, end + 1), input: this.spec.input, output: outputs.features, fused: this.fusedAfterConv, fusedAway: this.fusedAway,
      param: (name) => this.param(name),
      running: (bn) => ({ mean: this.param(`${bn}.running_mean`), variance: this.param(`${bn}.running_var`) }),
      mask: (node, index, shape) => this.dropMask(node, index, shape),
    };
    if (!leaks && backboneSupported(ctx)) this.backbone = ctx;
  }

  private dropMask(node: Extract<SpecNode, { op: 'dropout' | 'dropblock' }>, index: number, shape: number[]): tf.Tensor | null {
    const mask = trainingMask(node, index, shape, this.dropoutSeed, this.dropBlockCalls);
    return mask ? tf.tensor(mask, shape) : null;
  }

  private planFusion(): void {
    const uses = new Map<string, number>();
    const use = (n: string) => uses.set(n, (uses.get(n) ?? 0) + 1);
    for (const n of this.spec.nodes) (n.op === 'add' ? n.inputs : [n.input]).forEach(use);
    Object.values(this.spec.outputs).forEach(use);
    const consumerOf = (name: string): SpecNode | undefined =>
      uses.get(name) === 1 ? this.spec.nodes.find((n) => n.op !== 'add' && n.input === name) : undefined;
    for (const conv of this.spec.nodes) {
      if (conv.op !== 'conv2d') continue;
      const bn = consumerOf(conv.name);
      if (bn?.op !== 'batchnorm') continue;
      const next = consumerOf(bn.name);
      const act = next && (next.op === 'leakyrelu' || next.op === 'relu') ? next : null;
      this.fusedAfterConv.set(conv.name, { bn, act });
      this.fusedAway.add(bn.name);
      if (act) this.fusedAway.add(act.name);
    }
  }

  /** Trainable variables (conv and linear weights and biases, batch-norm weight and bias), internal layout. */
  trainableVariables(): tf.Variable[] {
    return this.trainable.map((e) => e.variable);
  }

  /** PyTorch names of trainableVariables(), in the same order. */
  trainableNames(): string[] {
    return this.trainable.map((e) => e.name);
  }

  /**
   * Converts tensors parallel to trainableVariables() (gradients, momentum buffers) to PyTorch layout,
   * keyed by parameter name.
   */
  toNamedWeights(tensors: tf.Tensor[]): NamedWeights {
    if (tensors.length !== this.trainable.length) throw new Error(`expected ${this.trainable.length} tensors, got ${tensors.length}`);
    const out: NamedWeights = new Map();
    tensors.forEach((t, i) => {
      const e = this.trainable[i];
      out.set(e.name, { data: toTorch(t.dataSync() as Float32Array, e.torchShape), shape: [...e.torchShape] });
    });
    return out;
  }

  /** The inverse of toNamedWeights: tensors in internal layout, parallel to trainableVariables(). */
  fromNamedWeights(weights: NamedWeights): tf.Tensor[] {
    return this.trainable.map((e) => {
      const w = weights.get(e.name);
      if (!w) throw new Error(`missing tensor '${e.name}'`);
      if (!sameShape(w.shape, e.torchShape)) throw new Error(`'${e.name}' has shape [${w.shape.join(', ')}], expected [${e.torchShape.join(', ')}]`);
      return toInternal(w.data, e.torchShape);
    });
  }

  /** Every parameter and running statistic, PyTorch layout, as Float32Array copies. */
  getWeights(): NamedWeights {
    this.checkAlive();
    const out: NamedWeights = new Map();
    for (const e of this.entries.values()) {
      out.set(e.name, { data: toTorch(e.variable.dataSync() as Float32Array, e.torchShape), shape: [...e.torchShape] });
    }
    return out;
  }

  /** Replaces every parameter and running statistic; throws listing what differs from the spec. */
  setWeights(weights: NamedWeights): void {
    this.checkAlive();
    validateWeights(this.spec, weights);
    for (const e of this.entries.values()) {
      const w = weights.get(e.name)!;
      tf.tidy(() => e.variable.assign(toInternal(w.data, e.torchShape)));
    }
  }

  /**
   * Runs the network on NHWC normalised images. In training mode this increments dropBlockCalls and updates
   * the batch-norm running statistics. The returned tensors are the caller's to dispose (intermediate ones
   * are left to the caller's tf.tidy, as gradient computation needs them).
   */
  forward(x: tf.Tensor4D, training: boolean): ForwardOutput {
    this.checkAlive();
    const { spec } = this;
    if (x.rank !== 4 || x.shape[3] !== spec.inputChannels) {
      throw new Error(`forward expects NHWC images with ${spec.inputChannels} channels, got shape [${x.shape.join(', ')}]`);
    }
    if (training) this.dropBlockCalls++;
    const values = new Map<string, tf.Tensor>([[spec.input, x]]);
    const get = (name: string): tf.Tensor => {
      const v = values.get(name);
      if (!v) throw new Error(`spec node input '${name}' is not computed before use`);
      return v;
    };
    const backbone = training ? this.backbone : null;
    if (backbone) values.set(backbone.output, backboneTrain(backbone, x));
    spec.nodes.forEach((node, index) => {
      if (values.has(node.name)) return;
      if (backbone && index < backbone.nodes.length) return; // backbone.nodes is the spec's first nodes
      if (training && this.fusedAway.has(node.name)) return;
      const fused = training ? this.fusedAfterConv.get(node.name) : undefined;
      if (node.op === 'conv2d' && fused) {
        const out = this.runConvBn(node, fused.bn, fused.act, get(node.input) as tf.Tensor4D);
        values.set(fused.act?.name ?? fused.bn.name, out);
      } else values.set(node.name, this.runNode(node, index, get, training));
    });
    return {
      features: get(spec.outputs.features) as tf.Tensor2D,
      logits: get(spec.outputs.logits) as tf.Tensor2D,
      rotLogits: get(spec.outputs.rot_logits) as tf.Tensor2D,
    };
  }

  /** The DropBlock keep rate the next training forward call will use for a node. */
  keepRateAt(calls: number, node: Extract<SpecNode, { op: 'dropblock' }>): number {
    return dropBlockKeepRate(calls, node.dropRate, node.scheduleSteps);
  }

  dispose(): void {
    if (this.disposed) return;
    for (const e of this.entries.values()) e.variable.dispose();
    this.disposed = true;
  }

  private param(name: string): tf.Variable {
    return this.entries.get(name)!.variable;
  }

  private runConvBn(conv: Extract<SpecNode, { op: 'conv2d' }>, bn: Extract<SpecNode, { op: 'batchnorm' }>, act: SpecNode | null, x: tf.Tensor4D): tf.Tensor4D {
    const alpha = act === null ? null : act.op === 'leakyrelu' ? act.alpha : 0;
    return convBnAct(
      x, this.param(`${conv.name}.weight`) as tf.Tensor4D, this.param(`${bn.name}.weight`) as tf.Tensor1D, this.param(`${bn.name}.bias`) as tf.Tensor1D,
      conv.bias ? (this.param(`${conv.name}.bias`) as tf.Tensor1D) : null,
      { mean: this.param(`${bn.name}.running_mean`), variance: this.param(`${bn.name}.running_var`) },
      { stride: conv.stride, padding: conv.padding, eps: bn.eps, momentum: bn.momentum, alpha },
    );
  }

  private runNode(node: SpecNode, index: number, get: (name: string) => tf.Tensor, training: boolean): tf.Tensor {
    switch (node.op) {
      case 'conv2d': {
        const y = conv2d(get(node.input) as tf.Tensor4D, this.param(`${node.name}.weight`) as tf.Tensor4D, { stride: node.stride, padding: node.padding });
        return node.bias ? tf.add(y, this.param(`${node.name}.bias`)) : y;
      }
      case 'batchnorm': {
        const x = get(node.input) as tf.Tensor4D;
        const gamma = this.param(`${node.name}.weight`);
        const beta = this.param(`${node.name}.bias`);
        const mean = this.param(`${node.name}.running_mean`);
        const variance = this.param(`${node.name}.running_var`);
        if (!training) return tf.batchNorm(x, mean as tf.Tensor1D, variance as tf.Tensor1D, beta as tf.Tensor1D, gamma as tf.Tensor1D, node.eps);
        return batchNormTraining(x, gamma, beta, { mean, variance }, node.eps, node.momentum);
      }
      case 'leakyrelu': {
        const x = get(node.input);
        return training && x.rank === 4 && node.alpha >= 0 ? leakyReluFused(x as tf.Tensor4D, node.alpha) : leakyReluForward(x, node.alpha);
      }
      case 'relu':
        return tf.relu(get(node.input));
      case 'add':
        return tf.add(get(node.inputs[0]), get(node.inputs[1]));
      case 'maxpool':
        return tf.maxPool(get(node.input) as tf.Tensor4D, node.size, node.stride, 'valid');
      case 'dropout':
      case 'dropblock': {
        const x = get(node.input);
        const mask = training ? this.dropMask(node, index, x.shape) : null;
        return mask ? tf.mul(x, mask) : x;
      }
      case 'globalavgpool':
        return tf.mean(get(node.input), [1, 2]);
      case 'linear': {
        const y = tf.matMul(get(node.input) as tf.Tensor2D, this.param(`${node.name}.weight`) as tf.Tensor2D);
        return node.bias ? tf.add(y, this.param(`${node.name}.bias`)) : y;
      }
    }
  }

  private checkAlive(): void {
    if (this.disposed) throw new Error('this TfModel has been disposed');
  }
}

/** Throws one Error listing missing, unexpected and mis-shaped tensors (num_batches_tracked is ignored). */
export function validateWeights(spec: ModelSpec, weights: NamedWeights): void {
  const expected = specParameters(spec);
  const problems: string[] = [];
  const known = new Set(expected.map((p) => p.name));
  const missing = expected.filter((p) => !weights.has(p.name)).map((p) => p.name);
  const unexpected = [...weights.keys()].filter((n) => !known.has(n) && !n.endsWith('num_batches_tracked'));
  if (missing.length) problems.push(`missing: ${missing.join(', ')}`);
  if (unexpected.length) problems.push(`unexpected: ${unexpected.join(', ')}`);
  for (const p of expected) {
    const w = weights.get(p.name);
    if (!w) continue;
    const size = p.shape.reduce((a, b) => a * b, 1);
    if (!sameShape(w.shape, p.shape)) problems.push(`${p.name}: shape [${w.shape.join(', ')}], expected [${p.shape.join(', ')}]`);
    else if (w.data.length !== size) problems.push(`${p.name}: ${w.data.length} values for shape [${p.shape.join(', ')}]`);
  }
  if (problems.length) throw new Error(`weights do not fit the ${spec.arch} spec: ${problems.join('; ')}`);
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** PyTorch layout -> internal: conv OIHW -> HWIO, linear [out, in] -> [in, out], vectors unchanged. */
function toInternal(data: Float32Array, torchShape: number[]): tf.Tensor {
  if (torchShape.length === 4) {
    const [o, i, h, w] = torchShape;
    const out = new Float32Array(data.length);
    for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      out[((y * w + x) * i + b) * o + a] = data[((a * i + b) * h + y) * w + x];
    }
    return tf.tensor4d(out, [h, w, i, o]);
  }
  if (torchShape.length === 2) {
    const [o, i] = torchShape;
    const out = new Float32Array(data.length);
    for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) out[b * o + a] = data[a * i + b];
    return tf.tensor2d(out, [i, o]);
  }
  return tf.tensor1d(Float32Array.from(data));
}

/** Internal layout -> PyTorch layout (a fresh Float32Array). */
function toTorch(data: Float32Array, torchShape: number[]): Float32Array {
  const out = new Float32Array(data.length);
  if (torchShape.length === 4) {
    const [o, i, h, w] = torchShape;
    for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      out[((a * i + b) * h + y) * w + x] = data[((y * w + x) * i + b) * o + a];
    }
  } else if (torchShape.length === 2) {
    const [o, i] = torchShape;
    for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) out[a * i + b] = data[b * o + a];
  } else out.set(data);
  return out;
}
