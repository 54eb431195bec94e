/**
 * A small writer of ONNX graphs for the training engine: one call per node, fresh value names, cached
 * constants, static shapes tracked by the caller. It produces the same protobufjs objects as the exporter
 * (proto/types.ts), so the same encoder and checker apply.
 */
import { floatTensorProto } from '../../proto/codec.js';
import {
  AttributeType, TensorDataType,
  type AttributeProtoObject, type ModelProtoObject, type NodeProtoObject, type TensorProtoObject, type ValueInfoProtoObject,
} from '../../proto/types.js';

/** Opset of the training graphs (Slice steps, ReduceSum axes as an input; ReduceMean axes still an attribute). */
export const TRAIN_OPSET = 17;
const IR_VERSION = 8;

export type Attr = Record<string, number | number[]>;
const FLOAT_ATTRS = new Set(['alpha', 'epsilon', 'momentum', 'beta']);

function attributes(attrs: Attr): AttributeProtoObject[] {
  return Object.entries(attrs).map(([name, v]) => {
    if (Array.isArray(v)) return { name, type: AttributeType.INTS, ints: v };
    return FLOAT_ATTRS.has(name) ? { name, type: AttributeType.FLOAT, f: v } : { name, type: AttributeType.INT, i: v };
  });
}

function int64TensorProto(name: string, values: number[]): TensorProtoObject {
  const raw = new Uint8Array(values.length * 8);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  return { name, dims: [values.length], dataType: TensorDataType.INT64, rawData: raw };
}

function valueInfo(name: string, dims: number[], elemType: number): ValueInfoProtoObject {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } };
}

export class GraphBuilder {
  private readonly nodes: NodeProtoObject[] = [];
  private readonly initializers: TensorProtoObject[] = [];
  private readonly inputs: ValueInfoProtoObject[] = [];
  private readonly outputs: ValueInfoProtoObject[] = [];
  private readonly constants = new Map<string, string>();
  private readonly used = new Set<string>();
  private counter = 0;

  /** A value name not used before, derived from `base`. */
  fresh(base: string): string {
    let name = base;
    while (this.used.has(name)) name = `${base}~${++this.counter}`;
    this.used.add(name);
    return name;
  }

  /** One node with one output; returns the output's name. */
  op(opType: string, input: string[], attrs: Attr = {}, outBase = opType): string {
    return this.opN(opType, input, 1, attrs, outBase)[0];
  }

  /** One node with `outputs` outputs. */
  opN(opType: string, input: string[], outputs: number, attrs: Attr = {}, outBase = opType): string[] {
    const output = Array.from({ length: outputs }, (_, i) => this.fresh(i === 0 ? outBase : `${outBase}:${i}`));
    const attribute = attributes(attrs);
    this.nodes.push({ opType, name: this.fresh(`node/${output[0]}`), input, output, ...(attribute.length ? { attribute } : {}) });
    return output;
  }

  /** The initializer made by `make` under a fresh name from `base`, once per `key`; later calls reuse it. */
  private shared(key: string, base: string, make: (name: string) => TensorProtoObject): string {
    let name = this.constants.get(key);
    if (!name) {
      name = this.fresh(base);
      this.initializers.push(make(name));
      this.constants.set(key, name);
    }
    return name;
  }

  /** An int64 vector constant (shapes, axes, slice bounds), shared between uses. */
  ints(values: number[]): string {
    return this.shared(`i64:${values.join(',')}`, `const/[${values.join(',')}]`, (name) => int64TensorProto(name, values));
  }

  /** A float scalar constant, shared between uses. */
  scalar(value: number): string {
    return this.shared(`f32:${value}`, `const/${value}`, (name) => floatTensorProto(name, [], Float32Array.of(value)));
  }

  /** A float vector of `length` copies of `value`, shared between uses. */
  filled(length: number, value: number): string {
    return this.shared(`f32x${length}:${value}`, `const/${value}x${length}`, (name) => floatTensorProto(name, [length], new Float32Array(length).fill(value)));
  }

  /** A float tensor constant called `name`, made once per graph; later calls with the name reuse it. */
  sharedTensor(name: string, dims: number[], data: Float32Array): string {
    return this.shared(`f32t:${name}`, name, (fresh) => floatTensorProto(fresh, dims, data));
  }

  /** A float tensor constant. */
  tensor(base: string, dims: number[], data: Float32Array): string {
    const name = this.fresh(base);
    this.initializers.push(floatTensorProto(name, dims, data));
    return name;
  }

  input(name: string, dims: number[], elemType: number = TensorDataType.FLOAT): string {
    if (this.used.has(name)) throw new Error(`graph input '${name}' is defined twice`);
    this.used.add(name);
    this.inputs.push(valueInfo(name, dims, elemType));
    return name;
  }

  /** Makes `value` a graph output called `name`. */
  output(name: string, value: string, dims: number[]): void {
    if (this.used.has(name)) throw new Error(`graph output '${name}' clashes with a value name`);
    this.used.add(name);
    this.nodes.push({ opType: 'Identity', name: this.fresh(`node/${name}`), input: [value], output: [name] });
    this.outputs.push(valueInfo(name, dims, TensorDataType.FLOAT));
  }

  model(graphName: string): ModelProtoObject {
    return {
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: TRAIN_OPSET }],
      producerName: 'skd',
      graph: { name: graphName, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    };
  }
}
