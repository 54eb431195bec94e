/**
 * Reading any ONNX file (written by skd or by another exporter) far enough to describe it: inputs and
 * outputs with their element types and shapes (symbolic dimensions by name), opset imports, IR version,
 * producer, metadata_props, node and initializer counts. Needs neither TensorFlow.js nor onnxruntime.
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../data/errors.js';
import { decodeOnnxModel } from './codec.js';
import { portableMetadata } from './portable-config.js';
import { dataTypeName, type ModelProtoObject, type ValueInfoProtoObject } from './types.js';

/** A fixed size, a symbolic name (for example "batch"), or null when the file leaves the size unknown. */
export type OnnxDim = number | string | null;

export interface OnnxValueInfo {
  name: string;
  /** Element type as onnxruntime names it ('float32', 'int64', ...), or 'non-tensor'. */
  elemType: string;
  /** Null when the file gives no shape. */
  shape: OnnxDim[] | null;
}

export interface OnnxModelInfo {
  irVersion: number;
  /** Domain '' is the default ONNX operator set (written 'ai.onnx' by some tools). */
  opsetImports: { domain: string; version: number }[];
  producer: { name: string; version: string };
  graphName: string;
  /** Graph inputs that are not initializers: what a caller must feed. */
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  metadata: Record<string, string>;
  nodeCount: number;
  initializerCount: number;
  /** Total element count of all initializers. */
  parameterCount: number;
  /** How many nodes use each operator type. */
  opTypes: Record<string, number>;
}

function valueInfo(v: ValueInfoProtoObject): OnnxValueInfo {
  const tensor = v.type?.tensorType;
  if (!tensor) return { name: v.name, elemType: 'non-tensor', shape: null };
  const dims = tensor.shape?.dim;
  return {
    name: v.name,
    elemType: dataTypeName(tensor.elemType),
    shape: tensor.shape ? (dims ?? []).map((d) => d.dimValue ?? d.dimParam ?? null) : null,
  };
}

/** Describes a decoded model. */
export function describeOnnxModel(model: ModelProtoObject): OnnxModelInfo {
  const g = model.graph;
  const initializerNames = new Set(g.initializer.map((t) => t.name));
  const opTypes: Record<string, number> = {};
  for (const n of g.node) {
    const key = n.domain ? `${n.domain}.${n.opType}` : n.opType;
    opTypes[key] = (opTypes[key] ?? 0) + 1;
  }
  const metadata: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) metadata[p.key] = p.value ?? '';
  return {
    irVersion: model.irVersion,
    opsetImports: model.opsetImport.map((o) => ({ domain: o.domain ?? '', version: o.version ?? 0 })),
    producer: { name: model.producerName ?? '', version: model.producerVersion ?? '' },
    graphName: g.name ?? '',
    inputs: g.input.filter((v) => !initializerNames.has(v.name)).map(valueInfo),
    outputs: g.output.map(valueInfo),
    // Older exports recorded local paths in the training configuration: shown by their base names.
    metadata: portableMetadata(metadata),
    nodeCount: g.node.length,
    initializerCount: g.initializer.length,
    parameterCount: g.initializer.reduce((sum, t) => sum + (t.dims ?? []).reduce((a, b) => a * b, 1), 0),
    opTypes,
  };
}

/**
 * Decodes ONNX bytes, or a file by path, and checks that they hold a model (an IR version and a graph).
 * Throws UserError naming the file when it is missing or not an ONNX model.
 */
export function readOnnxModel(pathOrBytes: string | Uint8Array): ModelProtoObject {
  const label = typeof pathOrBytes === 'string' ? pathOrBytes : 'the given bytes';
  let bytes: Uint8Array;
  if (typeof pathOrBytes === 'string') {
    try {
      bytes = readFileSync(pathOrBytes);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new UserError(`ONNX file not found: ${pathOrBytes}`);
      if (code === 'EISDIR') throw new UserError(`${pathOrBytes} is a directory, expected an ONNX file`);
      throw new UserError(`cannot read ${pathOrBytes}: ${(err as Error).message}`);
    }
  } else {
    bytes = pathOrBytes;
  }
  let model: ModelProtoObject;
  try {
    model = decodeOnnxModel(bytes);
  } catch (err) {
    throw new UserError(`${label} is not an ONNX model (protobuf decoding failed: ${(err as Error).message})`);
  }
  if (!model.irVersion || !model.graph) {
    throw new UserError(`${label} is not an ONNX model (no IR version or no graph)`);
  }
  return model;
}

/** What a model file says about itself; see OnnxModelInfo. */
export function readOnnxModelInfo(pathOrBytes: string | Uint8Array): OnnxModelInfo {
  return describeOnnxModel(readOnnxModel(pathOrBytes));
}
