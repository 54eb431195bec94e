/**
 * Backbones as data. One ModelSpec drives the TensorFlow.js forward pass (models/tfjs.ts) and the ONNX
 * exporter (export/). Node names are PyTorch state_dict prefixes of the reference implementation, so a
 * node "layer1.conv1" owns the parameter "layer1.conv1.weight", and reference weights load by name.
 *
 * Parameter layouts everywhere outside the TensorFlow.js builder (checkpoints, export, fixtures) are
 * PyTorch's: conv weight [out, in, kh, kw], linear weight [out, in], batch-norm weight/bias/running_mean/
 * running_var [channels].
 */

export type SpecNode =
  | { op: 'conv2d'; name: string; input: string; inChannels: number; outChannels: number; kernel: number; stride: number; padding: number; bias: boolean }
  | { op: 'batchnorm'; name: string; input: string; channels: number; eps: number; momentum: number }
  | { op: 'leakyrelu'; name: string; input: string; alpha: number }
  | { op: 'relu'; name: string; input: string }
  | { op: 'add'; name: string; inputs: [string, string] }
  | { op: 'maxpool'; name: string; input: string; size: number; stride: number }
  /** Training only: identity in eval mode and in exported graphs. */
  | { op: 'dropout'; name: string; input: string; rate: number }
  /**
   * Training only. keep_rate = max(1 - dropRate * n / scheduleSteps, 1 - dropRate), n = forward calls in
   * training mode so far; gamma = (1 - keep) / bs^2 * fs^2 / (fs - bs + 1)^2; output rescaled by numel / sum(mask).
   */
  | { op: 'dropblock'; name: string; input: string; blockSize: number; dropRate: number; scheduleSteps: number }
  /** [N, H, W, C] -> [N, C] */
  | { op: 'globalavgpool'; name: string; input: string }
  | { op: 'linear'; name: string; input: string; inFeatures: number; outFeatures: number; bias: boolean };

export type Architecture = 'resnet12' | 'conv4';

export interface ModelSpec {
  /** Bump when the meaning of a spec changes; checkpoints and exported graphs record it. */
  specVersion: 1;
  arch: Architecture;
  imageSize: number;
  inputChannels: number;
  widths: number[];
  numClasses: number;
  featureDim: number;
  /** The graph input's name; nodes refer to it as an input. */
  input: 'images';
  nodes: SpecNode[];
  /** Names of the nodes whose outputs are the model's outputs. */
  outputs: { features: string; logits: string; rot_logits: string };
}

export interface ResNet12Options {
  widths?: number[];
  numClasses: number;
  imageSize?: number;
  /** Reference: 0.1 dropout in blocks 1-2, DropBlock in blocks 3-4. */
  dropRate?: number;
  /** Reference: 2 for 32x32 inputs, 5 for 84x84. */
  dropBlockSize?: number;
}

export const DEFAULT_RESNET12_WIDTHS = [64, 160, 320, 640];

/** ResNet-12 of the reference (resnet12_ssl): 4 residual blocks, LeakyReLU 0.1, 1x1 shortcut, max-pool. */
export function resnet12Spec(opts: ResNet12Options): ModelSpec {
  const widths = opts.widths ?? DEFAULT_RESNET12_WIDTHS;
  if (widths.length !== 4) throw new Error(`ResNet-12 needs 4 widths, got ${widths.length}`);
  const imageSize = opts.imageSize ?? 32;
  const dropRate = opts.dropRate ?? 0.1;
  const blockSize = opts.dropBlockSize ?? (imageSize >= 64 ? 5 : 2);
  const nodes: SpecNode[] = [];
  let prev = 'images';
  let inCh = 3;
  widths.forEach((outCh, b) => {
    const L = `layer${b + 1}`;
    const conv = (name: string, input: string, i: number, k: number): SpecNode => ({
      op: 'conv2d', name, input, inChannels: i, outChannels: outCh, kernel: k, stride: 1, padding: k === 3 ? 1 : 0, bias: false,
    });
    const bn = (name: string, input: string): SpecNode => ({ op: 'batchnorm', name, input, channels: outCh, eps: 1e-5, momentum: 0.1 });
    nodes.push(conv(`${L}.conv1`, prev, inCh, 3), bn(`${L}.bn1`, `${L}.conv1`), { op: 'leakyrelu', name: `${L}.relu1`, input: `${L}.bn1`, alpha: 0.1 });
    nodes.push(conv(`${L}.conv2`, `${L}.relu1`, outCh, 3), bn(`${L}.bn2`, `${L}.conv2`), { op: 'leakyrelu', name: `${L}.relu2`, input: `${L}.bn2`, alpha: 0.1 });
    nodes.push(conv(`${L}.conv3`, `${L}.relu2`, outCh, 3), bn(`${L}.bn3`, `${L}.conv3`));
    nodes.push(conv(`${L}.downsample.0`, prev, inCh, 1), bn(`${L}.downsample.1`, `${L}.downsample.0`));
    nodes.push({ op: 'add', name: `${L}.add`, inputs: [`${L}.bn3`, `${L}.downsample.1`] });
    nodes.push({ op: 'leakyrelu', name: `${L}.relu`, input: `${L}.add`, alpha: 0.1 });
    nodes.push({ op: 'maxpool', name: `${L}.maxpool`, input: `${L}.relu`, size: 2, stride: 2 });
    const dropName = `${L}.drop`;
    if (b < 2) nodes.push({ op: 'dropout', name: dropName, input: `${L}.maxpool`, rate: dropRate });
    else nodes.push({ op: 'dropblock', name: dropName, input: `${L}.maxpool`, blockSize, dropRate, scheduleSteps: 40000 });
    prev = dropName;
    inCh = outCh;
  });
  nodes.push({ op: 'globalavgpool', name: 'avgpool', input: prev });
  nodes.push({ op: 'linear', name: 'classifier', input: 'avgpool', inFeatures: inCh, outFeatures: opts.numClasses, bias: true });
  nodes.push({ op: 'linear', name: 'rot_classifier', input: 'classifier', inFeatures: opts.numClasses, outFeatures: 4, bias: true });
  return {
    specVersion: 1, arch: 'resnet12', imageSize, inputChannels: 3, widths: [...widths], numClasses: opts.numClasses,
    featureDim: inCh, input: 'images', nodes, outputs: { features: 'avgpool', logits: 'classifier', rot_logits: 'rot_classifier' },
  };
}

/** Conv-4 of the reference: 4 x [conv3x3 (bias) -> BN -> ReLU -> MaxPool 2], global average pool. */
export function conv4Spec(opts: { numClasses: number; imageSize?: number; width?: number }): ModelSpec {
  const width = opts.width ?? 64;
  const nodes: SpecNode[] = [];
  let prev = 'images';
  let inCh = 3;
  for (let b = 0; b < 4; b++) {
    const L = `layer${b + 1}`;
    nodes.push({ op: 'conv2d', name: `${L}.0`, input: prev, inChannels: inCh, outChannels: width, kernel: 3, stride: 1, padding: 1, bias: true });
    nodes.push({ op: 'batchnorm', name: `${L}.1`, input: `${L}.0`, channels: width, eps: 1e-5, momentum: 0.1 });
    nodes.push({ op: 'relu', name: `${L}.2`, input: `${L}.1` });
    nodes.push({ op: 'maxpool', name: `${L}.3`, input: `${L}.2`, size: 2, stride: 2 });
    prev = `${L}.3`;
    inCh = width;
  }
  nodes.push({ op: 'globalavgpool', name: 'avgpool', input: prev });
  nodes.push({ op: 'linear', name: 'classifier', input: 'avgpool', inFeatures: width, outFeatures: opts.numClasses, bias: true });
  nodes.push({ op: 'linear', name: 'rot_classifier', input: 'classifier', inFeatures: opts.numClasses, outFeatures: 4, bias: true });
  return {
    specVersion: 1, arch: 'conv4', imageSize: opts.imageSize ?? 32, inputChannels: 3, widths: [width, width, width, width],
    numClasses: opts.numClasses, featureDim: width, input: 'images', nodes,
    outputs: { features: 'avgpool', logits: 'classifier', rot_logits: 'rot_classifier' },
  };
}

/** Parameter (and buffer) names and PyTorch-layout shapes that a spec owns, in a stable order. */
export function specParameters(spec: ModelSpec): { name: string; shape: number[]; kind: 'weight' | 'bias' | 'running_mean' | 'running_var' }[] {
  const out: { name: string; shape: number[]; kind: 'weight' | 'bias' | 'running_mean' | 'running_var' }[] = [];
  for (const n of spec.nodes) {
    if (n.op === 'conv2d') {
      out.push({ name: `${n.name}.weight`, shape: [n.outChannels, n.inChannels, n.kernel, n.kernel], kind: 'weight' });
      if (n.bias) out.push({ name: `${n.name}.bias`, shape: [n.outChannels], kind: 'bias' });
    } else if (n.op === 'batchnorm') {
      out.push({ name: `${n.name}.weight`, shape: [n.channels], kind: 'weight' });
      out.push({ name: `${n.name}.bias`, shape: [n.channels], kind: 'bias' });
      out.push({ name: `${n.name}.running_mean`, shape: [n.channels], kind: 'running_mean' });
      out.push({ name: `${n.name}.running_var`, shape: [n.channels], kind: 'running_var' });
    } else if (n.op === 'linear') {
      out.push({ name: `${n.name}.weight`, shape: [n.outFeatures, n.inFeatures], kind: 'weight' });
      if (n.bias) out.push({ name: `${n.name}.bias`, shape: [n.outFeatures], kind: 'bias' });
    }
  }
  return out;
}

/** Named tensors in PyTorch layout: the exchange form between checkpoints, the trainer and the exporter. */
export type NamedWeights = Map<string, { data: Float32Array; shape: number[] }>;

/** Weight tensors holding NaN or infinities, with how many of their values are. */
export function nonFiniteWeights(weights: NamedWeights): { name: string; nonFinite: number; size: number }[] {
  const found: { name: string; nonFinite: number; size: number }[] = [];
  for (const [name, t] of weights) {
    let nonFinite = 0;
    for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i]!)) nonFinite++;
    if (nonFinite > 0) found.push({ name, nonFinite, size: t.data.length });
  }
  return found;
}
