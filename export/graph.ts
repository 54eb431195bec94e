/**
 * ModelSpec + weights -> ONNX graph (eval mode). Convolutions absorb the batch-norm that follows them,
 * dropout and DropBlock vanish, linear layers become Gemm (transB = 1, PyTorch's [out, in] weight), global
 * average pooling becomes GlobalAveragePool + Flatten. An activation followed by a 2x2 max-pool is written
 * pool-first (exact: max commutes with a non-decreasing function), which is cheaper in onnxruntime. Only the
 * nodes that the requested outputs need are written. Values keep the spec's node names (PyTorch state_dict prefixes); a folded convolution is named
 * "<conv>+<batch-norm suffix>", e.g. "layer1.conv1+bn1", with initializers "layer1.conv1+bn1.weight"/".bias".
 */
import { UserError } from '../data/errors.js';
import type { Normalization } from '../data/types.js';
import type { ModelSpec, NamedWeights, SpecNode } from '../models/spec.js';
import { floatTensorProto } from '../proto/codec.js';
import { foldBatchNorm as foldBatchNormInto } from './fold.js';
import {
  AttributeType, TensorDataType,
  type AttributeProtoObject, type GraphProtoObject, type NodeProtoObject, type TensorProtoObject, type ValueInfoProtoObject,
} from '../proto/types.js';

export const OUTPUT_NAMES = ['features', 'logits', 'rot_logits'] as const;
export type OutputName = (typeof OUTPUT_NAMES)[number];
/** Layout of the graph input: NCHW (what ONNX convolutions use) or NHWC (a Transpose is added in the graph). */
export type InputLayout = 'nchw' | 'nhwc';
/** Name of the symbolic batch dimension of the input and outputs. */
export const BATCH_DIM = 'batch';

export interface GraphOptions {
  outputs: OutputName[];
  layout: InputLayout;
  /** When given, the graph takes pixels scaled to [0, 1] and normalises them itself. */
  bakedNormalization?: Normalization;
}

const attr = {
  int: (name: string, i: number): AttributeProtoObject => ({ name, type: AttributeType.INT, i }),
  ints: (name: string, ints: number[]): AttributeProtoObject => ({ name, type: AttributeType.INTS, ints }),
  float: (name: string, f: number): AttributeProtoObject => ({ name, type: AttributeType.FLOAT, f }),
};

function tensorValueInfo(name: string, dims: (number | string)[]): ValueInfoProtoObject {
  return {
    name,
    type: { tensorType: { elemType: TensorDataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

/** Reads a parameter by name and checks its shape against the spec. */
function parameter(weights: NamedWeights, name: string, shape: number[]): Float32Array {
  const w = weights.get(name);
  if (!w) throw new UserError(`weights lack '${name}', which the model spec needs`);
  if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
    throw new UserError(`weight '${name}' has shape [${w.shape.join(', ')}], the model spec expects [${shape.join(', ')}]`);
  }
  return w.data;
}

/** "layer1.conv1" + "layer1.bn1" -> "layer1.conv1+bn1"; the shared dotted prefix is written once. */
export function foldedName(conv: string, bn: string): string {
  const a = conv.split('.');
  const b = bn.split('.');
  let shared = 0;
  while (shared < a.length - 1 && shared < b.length - 1 && a[shared] === b[shared]) shared++;
  return `${conv}+${b.slice(shared).join('.')}`;
}

function inputOf(node: SpecNode): string[] {
  return node.op === 'add' ? [...node.inputs] : [node.input];
}

/** The spec nodes that the given output nodes depend on. */
export function neededNodes(spec: ModelSpec, outputNodes: string[]): Set<string> {
  const byName = new Map(spec.nodes.map((n) => [n.name, n]));
  const needed = new Set<string>();
  const stack = [...outputNodes];
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (name === spec.input || needed.has(name)) continue;
    const node = byName.get(name);
    if (!node) throw new Error(`model spec refers to an unknown node '${name}'`);
    needed.add(name);
    stack.push(...inputOf(node));
  }
  return needed;
}

/** Size of each output's second dimension. */
function outputWidth(spec: ModelSpec, output: OutputName): number {
  const node = spec.nodes.find((n) => n.name === spec.outputs[output]);
  if (node?.op === 'linear') return node.outFeatures;
  return spec.featureDim;
}

export function buildOnnxGraph(spec: ModelSpec, weights: NamedWeights, opts: GraphOptions): GraphProtoObject {
  const nodes: NodeProtoObject[] = [];
  const initializers: TensorProtoObject[] = [];
  const emit = (opType: string, name: string, input: string[], output: string, attribute: AttributeProtoObject[] = []) => {
    nodes.push({ opType, name, input, output: [output], ...(attribute.length > 0 ? { attribute } : {}) });
  };
  const initializer = (name: string, dims: number[], data: Float32Array): string => {
    initializers.push(floatTensorProto(name, dims, data));
    return name;
  };

  const size = spec.imageSize;
  const channels = spec.inputChannels;
  const inputDims = opts.layout === 'nchw' ? [BATCH_DIM, channels, size, size] : [BATCH_DIM, size, size, channels];
  let current: string = spec.input;
  if (opts.layout === 'nhwc') {
    emit('Transpose', 'input.to_nchw', [current], 'images.nchw', [attr.ints('perm', [0, 3, 1, 2])]);
    current = 'images.nchw';
  }
  if (opts.bakedNormalization) {
    const { mean, std } = opts.bakedNormalization;
    if (mean.length !== channels || std.length !== channels) throw new UserError(`normalisation needs ${channels} means and stds`);
    const meanName = initializer('normalization.mean', [1, channels, 1, 1], Float32Array.from(mean));
    const stdName = initializer('normalization.std', [1, channels, 1, 1], Float32Array.from(std));
    emit('Sub', 'normalization.sub', [current, meanName], 'images.centered');
    emit('Div', 'normalization.div', ['images.centered', stdName], 'images.normalized');
    current = 'images.normalized';
  }

  const outputs = [...new Set(opts.outputs)];
  const outputNameOf = new Map<string, OutputName>(outputs.map((o) => [spec.outputs[o], o]));
  const needed = neededNodes(spec, outputs.map((o) => spec.outputs[o]));
  const consumers = new Map<string, SpecNode[]>();
  for (const n of spec.nodes) {
    if (!needed.has(n.name)) continue;
    for (const i of inputOf(n)) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  /** The ONNX value that holds each spec node's output. */
  const valueOf = new Map<string, string>([[spec.input, current]]);
  const read = (name: string): string => {
    const v = valueOf.get(name);
    if (v === undefined) throw new Error(`model spec uses '${name}' before it is defined`);
    return v;
  };
  const valueName = (name: string): string => outputNameOf.get(name) ?? name;
  /** Spec nodes already written as part of an earlier one (batch-norm into conv, max-pool before an activation). */
  const absorbed = new Set<string>();

  for (const node of spec.nodes) {
    if (!needed.has(node.name) || absorbed.has(node.name)) continue;
    const out = valueName(node.name);
    switch (node.op) {
      case 'conv2d': {
        const wShape = [node.outChannels, node.inChannels, node.kernel, node.kernel];
        const weight = parameter(weights, `${node.name}.weight`, wShape);
        const bias = node.bias ? parameter(weights, `${node.name}.bias`, [node.outChannels]) : undefined;
        const convAttrs = [
          attr.ints('kernel_shape', [node.kernel, node.kernel]),
          attr.ints('strides', [node.stride, node.stride]),
          attr.ints('pads', [node.padding, node.padding, node.padding, node.padding]),
          attr.ints('dilations', [1, 1]),
          attr.int('group', 1),
        ];
        const users = consumers.get(node.name) ?? [];
        const bn = users.length === 1 && users[0].op === 'batchnorm' && !outputNameOf.has(node.name) ? users[0] : undefined;
        if (bn && bn.op === 'batchnorm' && bn.channels === node.outChannels) {
          const p = (kind: string) => parameter(weights, `${bn.name}.${kind}`, [bn.channels]);
          const f = foldBatchNormInto(weight, node.outChannels, bias, {
            gamma: p('weight'), beta: p('bias'), runningMean: p('running_mean'), runningVar: p('running_var'), eps: bn.eps,
          });
          const name = foldedName(node.name, bn.name);
          const bnOut = valueName(bn.name);
          emit('Conv', name, [read(node.input), initializer(`${name}.weight`, wShape, f.weight), initializer(`${name}.bias`, [node.outChannels], f.bias)], bnOut, convAttrs);
          valueOf.set(node.name, bnOut);
          valueOf.set(bn.name, bnOut);
          absorbed.add(bn.name);
        } else {
          const inputs = [read(node.input), initializer(`${node.name}.weight`, wShape, weight)];
          if (bias) inputs.push(initializer(`${node.name}.bias`, [node.outChannels], bias));
          emit('Conv', node.name, inputs, out, convAttrs);
          valueOf.set(node.name, out);
        }
        break;
      }
      case 'batchnorm': {
        const p = (kind: string) => initializer(`${node.name}.${kind}`, [node.channels], parameter(weights, `${node.name}.${kind}`, [node.channels]));
        emit('BatchNormalization', node.name, [read(node.input), p('weight'), p('bias'), p('running_mean'), p('running_var')], out, [attr.float('epsilon', node.eps)]);
        valueOf.set(node.name, out);
        break;
      }
      case 'leakyrelu':
      case 'relu': {
        const activation = (input: string, output: string) => node.op === 'leakyrelu'
          ? emit('LeakyRelu', node.name, [input], output, [attr.float('alpha', node.alpha)])
          : emit('Relu', node.name, [input], output);
        const users = consumers.get(node.name) ?? [];
        const pool = users.length === 1 && users[0].op === 'maxpool' && !outputNameOf.has(node.name) && (node.op === 'relu' || node.alpha >= 0) ? users[0] : undefined;
        if (pool && pool.op === 'maxpool') {
          // Max-pooling commutes exactly with a non-decreasing activation; pooling first runs the
          // activation on a quarter of the values (and keeps onnxruntime's blocked layout between blocks).
          const pooledOut = valueName(pool.name);
          emit('MaxPool', pool.name, [read(node.input)], `${pool.name}.before_${node.op}`, [
            attr.ints('kernel_shape', [pool.size, pool.size]), attr.ints('strides', [pool.stride, pool.stride]),
          ]);
          activation(`${pool.name}.before_${node.op}`, pooledOut);
          valueOf.set(pool.name, pooledOut);
          absorbed.add(pool.name);
        } else {
          activation(read(node.input), out);
          valueOf.set(node.name, out);
        }
        break;
      }
      case 'add':
        emit('Add', node.name, [read(node.inputs[0]), read(node.inputs[1])], out);
        valueOf.set(node.name, out);
        break;
      case 'maxpool':
        emit('MaxPool', node.name, [read(node.input)], out, [
          attr.ints('kernel_shape', [node.size, node.size]), attr.ints('strides', [node.stride, node.stride]),
        ]);
        valueOf.set(node.name, out);
        break;
      case 'dropout':
      case 'dropblock':
        // Identity in eval mode: later nodes read the input's value directly.
        if (outputNameOf.has(node.name)) {
          emit('Identity', node.name, [read(node.input)], out);
          valueOf.set(node.name, out);
        } else {
          valueOf.set(node.name, read(node.input));
        }
        break;
      case 'globalavgpool':
        emit('GlobalAveragePool', node.name, [read(node.input)], `${node.name}.pooled`);
        emit('Flatten', `${node.name}.flatten`, [`${node.name}.pooled`], out, [attr.int('axis', 1)]);
        valueOf.set(node.name, out);
        break;
      case 'linear': {
        const inputs = [read(node.input), initializer(`${node.name}.weight`, [node.outFeatures, node.inFeatures], parameter(weights, `${node.name}.weight`, [node.outFeatures, node.inFeatures]))];
        if (node.bias) inputs.push(initializer(`${node.name}.bias`, [node.outFeatures], parameter(weights, `${node.name}.bias`, [node.outFeatures])));
        emit('Gemm', node.name, inputs, out, [attr.int('transB', 1)]);
        valueOf.set(node.name, out);
        break;
      }
    }
  }

  return {
    name: `skd_${spec.arch}`,
    node: nodes,
    initializer: initializers,
    input: [tensorValueInfo(spec.input, inputDims)],
    output: outputs.map((o) => tensorValueInfo(o, [BATCH_DIM, outputWidth(spec, o)])),
  };
}
