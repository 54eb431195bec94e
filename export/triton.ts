/**
 * A Triton Inference Server model repository for an ONNX backbone:
 *
 *   DIR/<name>/config.pbtxt     platform onnxruntime_onnx, max_batch_size, inputs and outputs with data types and
 *                               dims read from the graph, dynamic batching with a queue delay, an instance group
 *   DIR/<name>/1/model.onnx     the graph, byte for byte
 *
 * The config is protobuf text format of Triton's ModelConfig (proto/model_config.proto holds the messages used).
 * With a symbolic batch dimension on every input and output (skd export writes "batch"), Triton batches requests
 * itself and the dims leave the batch dimension out; a graph with a fixed batch size gets max_batch_size 0 and
 * its full dims, without dynamic batching.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../data/atomic-write.js';
import { UserError } from '../data/errors.js';
import { readOnnxModelInfo, type OnnxModelInfo, type OnnxValueInfo } from '../proto/read.js';

export type TritonInstanceKind = 'gpu' | 'cpu' | 'auto';
export const TRITON_INSTANCE_KINDS: readonly TritonInstanceKind[] = ['gpu', 'cpu', 'auto'];

export interface TritonOptions {
  /** The model's name in the repository (its folder). */
  name: string;
  /** Largest batch Triton forms. Default 64. */
  maxBatchSize?: number;
  /** Where instances run: KIND_GPU (default), KIND_CPU or KIND_AUTO. */
  instanceKind?: TritonInstanceKind;
  /** Instances per device. Default 1. */
  instanceCount?: number;
  /** Longest a request waits for others to join its batch, in microseconds. Default 500. */
  queueDelayUs?: number;
}

export const TRITON_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;

/** onnxruntime's element type names -> Triton's DataType names. */
const DATA_TYPES: Record<string, string> = {
  bool: 'TYPE_BOOL', uint8: 'TYPE_UINT8', uint16: 'TYPE_UINT16', uint32: 'TYPE_UINT32', uint64: 'TYPE_UINT64',
  int8: 'TYPE_INT8', int16: 'TYPE_INT16', int32: 'TYPE_INT32', int64: 'TYPE_INT64', float16: 'TYPE_FP16',
  float32: 'TYPE_FP32', float64: 'TYPE_FP64', string: 'TYPE_STRING', bfloat16: 'TYPE_BF16',
};

const KINDS: Record<TritonInstanceKind, string> = { gpu: 'KIND_GPU', cpu: 'KIND_CPU', auto: 'KIND_AUTO' };

function dataType(v: OnnxValueInfo): string {
  const t = DATA_TYPES[v.elemType];
  if (!t) throw new UserError(`tensor '${v.name}' has element type ${v.elemType}, which Triton has no data type for`);
  return t;
}

/** A dimension the caller chooses (symbolic or unknown), as a batch dimension must be. */
const isFree = (d: number | string | null): boolean => typeof d !== 'number';

/** Dims as Triton wants them: symbolic sizes become -1; the batch dimension is dropped when Triton batches. */
function dims(v: OnnxValueInfo, batched: boolean): number[] {
  if (!v.shape) throw new UserError(`tensor '${v.name}' has no shape in the graph; Triton needs its dims`);
  return (batched ? v.shape.slice(1) : v.shape).map((d) => (typeof d === 'number' ? d : -1));
}

/** Powers of two up to the largest batch: the batch sizes the dynamic batcher prefers to form. */
function preferredBatchSizes(max: number): number[] {
  const sizes: number[] = [];
  for (let b = 8; b < max; b *= 2) sizes.push(b);
  sizes.push(max);
  return sizes;
}

/** A text-format string literal. */
const quote = (text: string): string => `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;

const list = (values: (number | string)[]): string => `[ ${values.join(', ')} ]`;

/** config.pbtxt for a described graph. */
export function tritonConfig(info: OnnxModelInfo, options: TritonOptions): string {
  const maxBatchSize = options.maxBatchSize ?? 64;
  const kind = options.instanceKind ?? 'gpu';
  const count = options.instanceCount ?? 1;
  const queueDelayUs = options.queueDelayUs ?? 500;
  if (!TRITON_NAME_PATTERN.test(options.name)) throw new UserError(`Triton model name '${options.name}' must be 1-128 letters, digits, '_', '.' or '-'`);
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) throw new UserError(`max batch size must be a positive integer, got ${maxBatchSize}`);
  if (!Number.isInteger(count) || count < 1) throw new UserError(`instance count must be a positive integer, got ${count}`);
  if (!Number.isInteger(queueDelayUs) || queueDelayUs < 0) throw new UserError(`queue delay must be a non-negative integer (microseconds), got ${queueDelayUs}`);
  if (!KINDS[kind]) throw new UserError(`instance kind must be one of ${TRITON_INSTANCE_KINDS.join(', ')}, got '${kind}'`);
  const tensors = [...info.inputs, ...info.outputs];
  if (info.inputs.length === 0 || info.outputs.length === 0) throw new UserError('the graph has no inputs or no outputs');
  // Triton batches only when every input and output leads with a batch dimension it may choose.
  const batched = tensors.every((t) => t.shape !== null && t.shape.length > 0 && isFree(t.shape[0]!));
  const layout = info.metadata['skd.layout'];
  const lines: string[] = [
    `name: ${quote(options.name)}`,
    'platform: "onnxruntime_onnx"',
    `max_batch_size: ${batched ? maxBatchSize : 0}`,
    'default_model_filename: "model.onnx"',
  ];
  const inputs = info.inputs.map((v) => {
    const d = dims(v, batched);
    const format = d.length === 3 && (layout === 'nchw' || layout === 'nhwc') ? `\n    format: ${layout === 'nchw' ? 'FORMAT_NCHW' : 'FORMAT_NHWC'}` : '';
    return `  {\n    name: ${quote(v.name)}\n    data_type: ${dataType(v)}${format}\n    dims: ${list(d)}\n  }`;
  });
  const outputs = info.outputs.map((v) => `  {\n    name: ${quote(v.name)}\n    data_type: ${dataType(v)}\n    dims: ${list(dims(v, batched))}\n  }`);
  lines.push(`input [\n${inputs.join(',\n')}\n]`, `output [\n${outputs.join(',\n')}\n]`);
  lines.push(`instance_group [\n  {\n    count: ${count}\n    kind: ${KINDS[kind]}\n  }\n]`);
  if (batched) lines.push(`dynamic_batching {\n  preferred_batch_size: ${list(preferredBatchSizes(maxBatchSize))}\n  max_queue_delay_microseconds: ${queueDelayUs}\n}`);
  return `${lines.join('\n')}\n`;
}

export interface TritonRepositoryEntry {
  config: string;
  model: string;
}

/** Writes DIR/<name>/config.pbtxt and DIR/<name>/1/model.onnx (each atomically) for an ONNX file. */
export function writeTritonRepository(onnxPath: string, repoDir: string, options: TritonOptions): TritonRepositoryEntry {
  const bytes = readFileSync(onnxPath);
  const config = tritonConfig(readOnnxModelInfo(bytes), options);
  const modelDir = join(repoDir, options.name);
  const versionDir = join(modelDir, '1');
  try {
    mkdirSync(versionDir, { recursive: true });
  } catch (err) {
    throw new UserError(`cannot create ${versionDir}: ${(err as Error).message}`);
  }
  const paths = { config: join(modelDir, 'config.pbtxt'), model: join(versionDir, 'model.onnx') };
  writeFileAtomic(paths.model, bytes);
  writeFileAtomic(paths.config, config);
  return paths;
}
