/**
 * A Gen-1 teacher given as an ONNX graph (exported by `skd export`, or by torch.onnx from the reference).
 *
 * The graph's weights are read back into the network description, so the teacher runs in TensorFlow.js like
 * any other and the student can start from it:
 * - convolutions, in graph order, map to the description's convolutions in order (shapes checked);
 * - a BatchNormalization after a convolution gives the batch-norm parameters; when batch-norm was folded
 *   into the convolution (W' = W * s, b' = (b - mean) * s + beta), the convolution takes W' and the batch-norm
 *   becomes the identity in evaluation mode (weight 1, bias b', running mean 0, running variance 1 - eps);
 * - Gemm (or MatMul) layers map to `classifier` and `rot_classifier`; a graph without a rotation head gets a
 *   seeded fresh one (Gen-1's loss does not use it).
 * The result is then checked: ONNX Runtime and TensorFlow.js must give the same logits on a few inputs, or
 * the architecture differs and the message says by how much.
 *
 * Folded batch-norm cannot be unfolded: evaluation-mode outputs are exact, but in training mode the student's
 * batch-norm normalises with batch statistics and unit scale, so its first steps differ from a student
 * initialised from an unfolded checkpoint. A checkpoint teacher (gen<N>.safetensors) avoids this.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../data/errors.js';
import { initWeights } from '../models/init.js';
import type { ModelSpec, NamedWeights, SpecNode } from '../models/spec.js';
import { TfModel } from '../models/tfjs.js';
import { tensorProtoToFloat32 } from '../proto/codec.js';
import { readOnnxModel } from '../proto/read.js';
import type { ModelProtoObject, NodeProtoObject, TensorProtoObject } from '../proto/types.js';
import { specFor, type ModelName } from './config.js';
import { readFileSync } from 'node:fs';
import { PreprocessingError, SKD_KEYS, resolvePreprocessing, type Preprocessing } from '../models/preprocessing.js';
import { readOnnxInfo } from '../infer/onnx-metadata.js';

/** What an ONNX graph yields as a Gen-1 teacher (train/teacher.ts's TeacherSource, plus notes for the log). */
export interface OnnxTeacher {
  spec: ModelSpec;
  weights: NamedWeights;
  generation: number;
  config: Record<string, unknown>;
  notes: string[];
}

export interface OnnxTeacherHints {
  /** Used when the graph's metadata does not name them. */
  model?: ModelName;
  widths?: number[];
  imageSize: number;
  numClasses: number;
}

type Tensor = { data: Float32Array; shape: number[] };

function floatData(t: TensorProtoObject, path: string): Float32Array {
  try {
    return tensorProtoToFloat32(t);
  } catch (err) {
    throw new UserError(`${path}: initializer ${(err as Error).message}`);
  }
}

function attrInt(node: NodeProtoObject, name: string, fallback: number): number {
  const a = node.attribute?.find((x) => x.name === name);
  return a?.i !== undefined ? Number(a.i) : fallback;
}

/** Picks the architecture from metadata, then hints, then the graph itself. */
function describeGraph(model: ModelProtoObject, path: string, hints: OnnxTeacherHints, convs: NodeProtoObject[], init: Map<string, Tensor>): ModelSpec {
  const meta = new Map((model.metadataProps ?? []).map((p) => [p.key, p.value]));
  const linears = model.graph.node.filter((n) => n.opType === 'Gemm' || n.opType === 'MatMul');
  const arch = (meta.get(SKD_KEYS.arch) as ModelName | undefined) ?? hints.model ?? (convs.length === 4 ? 'conv4' : 'resnet12');
  if (arch !== 'resnet12' && arch !== 'conv4') throw new UserError(`${path}: architecture "${arch}" is not one skd trains (resnet12, conv4)`);
  const outChannels = (i: number): number => init.get(convs[i]?.input[1] ?? '')?.shape[0] ?? 0;
  let widths = meta.has(SKD_KEYS.widths) ? (JSON.parse(meta.get(SKD_KEYS.widths)!) as number[]) : hints.widths;
  if (!widths) widths = arch === 'conv4' ? [outChannels(0)] : [0, 4, 8, 12].map(outChannels);
  if (arch === 'conv4') widths = [widths[0]];
  const classifier = linears[0] ? init.get(linears[0].input[1]) : undefined;
  const numClasses = meta.has(SKD_KEYS.numClasses) ? Number(meta.get(SKD_KEYS.numClasses)) : classifier ? classifierOut(linears[0], classifier) : hints.numClasses;
  const inputDims = model.graph.input[0]?.type?.tensorType?.shape?.dim ?? [];
  const sizes = inputDims.map((d) => d.dimValue).filter((d): d is number => typeof d === 'number' && d > 3);
  const imageSize = meta.has(SKD_KEYS.imageSize) ? Number(meta.get(SKD_KEYS.imageSize)) : sizes[0] ?? hints.imageSize;
  return specFor({ model: arch, widths, imageSize }, numClasses);
}

function classifierOut(node: NodeProtoObject, w: Tensor): number {
  if (node.opType === 'Gemm') return attrInt(node, 'transB', 0) === 1 ? w.shape[0] : w.shape[1];
  return w.shape[1];
}

/** Reads an ONNX graph's weights into `spec`'s PyTorch-named parameters (see the module comment). */
function weightsFromGraph(model: ModelProtoObject, path: string, spec: ModelSpec, init: Map<string, Tensor>): { weights: NamedWeights; notes: string[] } {
  const graph = model.graph;
  const notes: string[] = [];
  const convs = graph.node.filter((n) => n.opType === 'Conv');
  const specConvs = spec.nodes.filter((n): n is Extract<SpecNode, { op: 'conv2d' }> => n.op === 'conv2d');
  const what = `${spec.arch} ${spec.widths.join('-')}`;
  if (convs.length !== specConvs.length) throw new UserError(`${path} does not match a ${what}: the graph has ${convs.length} convolutions, the description ${specConvs.length}`);
  const activation = spec.arch === 'resnet12' ? 'LeakyRelu' : 'Relu';
  if (!graph.node.some((n) => n.opType === activation)) throw new UserError(`${path} does not match a ${what}: it has no ${activation} activations`);
  const weights = initWeights(spec, 0);
  const bnOf = new Map<string, Extract<SpecNode, { op: 'batchnorm' }>>();
  for (const n of spec.nodes) if (n.op === 'batchnorm') bnOf.set(n.input, n);
  const set = (name: string, data: Float32Array): void => {
    const t = weights.get(name)!;
    if (t.data.length !== data.length) throw new UserError(`${path}: ${name} needs ${t.data.length} values, the graph gives ${data.length}`);
    weights.set(name, { data, shape: t.shape });
  };
  specConvs.forEach((sc, i) => {
    const node = convs[i];
    const w = init.get(node.input[1]);
    const expected = [sc.outChannels, sc.inChannels, sc.kernel, sc.kernel];
    if (!w) throw new UserError(`${path}: convolution ${node.name ?? i} has no weight initializer`);
    if (w.shape.join(',') !== expected.join(',')) {
      throw new UserError(`${path} does not match a ${what}: convolution ${i + 1} (${node.name ?? node.input[1]}) has shape [${w.shape}], ${sc.name} needs [${expected}]`);
    }
    set(`${sc.name}.weight`, w.data);
    const bias = node.input[2] ? init.get(node.input[2])?.data : undefined;
    const bn = bnOf.get(sc.name);
    const onnxBn = graph.node.find((n) => n.opType === 'BatchNormalization' && n.input[0] === node.output[0]);
    if (sc.bias) set(`${sc.name}.bias`, new Float32Array(sc.outChannels));
    if (!bn) {
      if (sc.bias && bias) set(`${sc.name}.bias`, bias);
      return;
    }
    if (onnxBn) {
      const p = (k: number): Float32Array => init.get(onnxBn.input[k])?.data ?? new Float32Array(sc.outChannels);
      set(`${bn.name}.weight`, p(1));
      set(`${bn.name}.bias`, p(2));
      set(`${bn.name}.running_mean`, p(3));
      set(`${bn.name}.running_var`, p(4));
      if (bias) {
        if (sc.bias) set(`${sc.name}.bias`, bias);
        else set(`${bn.name}.running_mean`, p(3).map((m, c) => m - bias[c]));
      }
    } else {
      // Folded: the batch-norm becomes the identity in evaluation mode plus the folded bias.
      set(`${bn.name}.weight`, new Float32Array(sc.outChannels).fill(1));
      set(`${bn.name}.bias`, bias ?? new Float32Array(sc.outChannels));
      set(`${bn.name}.running_mean`, new Float32Array(sc.outChannels));
      set(`${bn.name}.running_var`, new Float32Array(sc.outChannels).fill(1 - bn.eps));
    }
  });
  if (!graph.node.some((n) => n.opType === 'BatchNormalization')) notes.push(`${path} has batch-norm folded into its convolutions; the student starts from the folded weights (identical in evaluation mode)`);

  const linears = graph.node.filter((n) => n.opType === 'Gemm' || n.opType === 'MatMul');
  const specLinears = spec.nodes.filter((n): n is Extract<SpecNode, { op: 'linear' }> => n.op === 'linear');
  if (linears.length === 0) throw new UserError(`${path} has no classifier (Gemm or MatMul); a teacher must expose logits`);
  specLinears.forEach((sl, i) => {
    const node = linears[i];
    if (!node) {
      notes.push(`${path} has no ${sl.name}; it starts from a seeded initialisation (Gen-1 does not train it)`);
      return;
    }
    const w = init.get(node.input[1]);
    if (!w || w.shape.length !== 2) throw new UserError(`${path}: layer ${node.name ?? i} has no 2-d weight initializer`);
    const transposed = node.opType === 'Gemm' ? attrInt(node, 'transB', 0) === 1 : false;
    const [out, inp] = transposed ? w.shape : [w.shape[1], w.shape[0]];
    if (out !== sl.outFeatures || inp !== sl.inFeatures) {
      throw new UserError(`${path} does not match a ${what}: ${sl.name} should map ${sl.inFeatures} -> ${sl.outFeatures}, the graph's layer maps ${inp} -> ${out}`);
    }
    const data = new Float32Array(out * inp);
    for (let o = 0; o < out; o++) for (let k = 0; k < inp; k++) data[o * inp + k] = transposed ? w.data[o * inp + k] : w.data[k * out + o];
    set(`${sl.name}.weight`, data);
    let bias = node.opType === 'Gemm' ? init.get(node.input[2] ?? '')?.data : undefined;
    if (node.opType === 'MatMul') {
      const add = graph.node.find((n) => n.opType === 'Add' && n.input.includes(node.output[0]));
      const other = add?.input.find((x) => x !== node.output[0]);
      bias = other ? init.get(other)?.data : undefined;
    }
    if (sl.bias) set(`${sl.name}.bias`, bias ?? new Float32Array(out));
  });
  return { weights, notes };
}

/** Runs the graph and the rebuilt network on the same inputs; throws when their logits disagree. */
async function checkLogits(path: string, model: ModelProtoObject, spec: ModelSpec, weights: NamedWeights): Promise<void> {
  if (!model.graph.output.some((o) => o.name === 'logits')) throw new UserError(`${path} has no output named "logits" (outputs: ${model.graph.output.map((o) => o.name).join(', ')}); a teacher must expose its logits`);
  // The teacher is fed normalised images; a graph that normalises itself gets them scaled back to 0-1.
  let p: Preprocessing;
  try {
    p = resolvePreprocessing(path, readOnnxInfo(readFileSync(path)), { outputName: 'logits', size: spec.imageSize }, { layout: 'nchw', mean: [0, 0, 0], std: [1, 1, 1] }).preprocessing;
  } catch (err) {
    if (err instanceof PreprocessingError) throw new UserError(err.message);
    throw err;
  }
  const nhwc = p.layout === 'nhwc';
  const mean = p.normalizationInGraph ? p.mean : [0, 0, 0];
  const std = p.normalizationInGraph ? p.std : [1, 1, 1];
  const n = 4;
  const s = spec.imageSize;
  const x = tf.tidy(() => tf.randomNormal([n, s, s, 3], 0, 1, 'float32', 7)) as tf.Tensor4D;
  const normalized = x.dataSync() as Float32Array;
  const feed = new Float32Array(normalized.length);
  for (let b = 0; b < n; b++) for (let h = 0; h < s; h++) for (let w = 0; w < s; w++) for (let c = 0; c < 3; c++) {
    const v = normalized[((b * s + h) * s + w) * 3 + c] * std[c] + mean[c];
    feed[nhwc ? ((b * s + h) * s + w) * 3 + c : ((b * 3 + c) * s + h) * s + w] = v;
  }
  const net = new TfModel(spec, weights);
  let ours: Float32Array;
  try {
    ours = tf.tidy(() => net.forward(x, false).logits.dataSync() as Float32Array);
  } finally {
    net.dispose();
    x.dispose();
  }
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(path);
  const result = await session.run({ [p.inputName]: new ort.Tensor('float32', feed, nhwc ? [n, s, s, 3] : [n, 3, s, s]) }, ['logits']);
  await session.release();
  const theirs = result.logits.data as Float32Array;
  let maxDiff = 0;
  let scale = 1e-6;
  for (let i = 0; i < ours.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(ours[i] - theirs[i]));
    scale = Math.max(scale, Math.abs(theirs[i]));
  }
  if (ours.length !== theirs.length || !(maxDiff <= 1e-3 * scale + 1e-4)) {
    throw new UserError(`${path} does not behave as a ${spec.arch} ${spec.widths.join('-')} with its weights: logits differ by up to ${maxDiff.toPrecision(3)} (largest logit ${scale.toPrecision(3)}); its layer graph differs from the description (activation, pooling, shortcut or input layout)`);
  }
}

export async function teacherFromOnnx(path: string, hints: OnnxTeacherHints): Promise<OnnxTeacher> {
  const model = readOnnxModel(path);
  const init = new Map<string, Tensor>();
  for (const t of model.graph.initializer) if (t.name) init.set(t.name, { data: floatData(t, path), shape: (t.dims ?? []).map(Number) });
  const convs = model.graph.node.filter((n) => n.opType === 'Conv');
  const spec = describeGraph(model, path, hints, convs, init);
  const { weights, notes } = weightsFromGraph(model, path, spec, init);
  await checkLogits(path, model, spec, weights);
  const meta = new Map((model.metadataProps ?? []).map((p) => [p.key, p.value]));
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(meta.get(SKD_KEYS.trainingConfig) ?? '{}') as Record<string, unknown>;
  } catch {
    config = {};
  }
  if (meta.get(SKD_KEYS.dataset)) config = { ...config, dataset: meta.get(SKD_KEYS.dataset) };
  return { spec, weights, generation: 0, notes, config };
}
