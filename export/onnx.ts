/**
 * The exporter's library API: a ModelSpec and its weights (PyTorch layout) -> an ONNX model (opset 17,
 * IR version 8) with batch-norm folded, a dynamic batch axis and self-describing metadata_props.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../data/atomic-write.js';
import { UserError } from '../data/errors.js';
import type { Normalization } from '../data/types.js';
import { nonFiniteWeights, type ModelSpec, type NamedWeights } from '../models/spec.js';
import { checkOnnxModel } from '../proto/check.js';
import { encodeOnnxModel } from '../proto/codec.js';
import type { ModelProtoObject } from '../proto/types.js';
import { buildOnnxGraph, OUTPUT_NAMES, type InputLayout, type OutputName } from './graph.js';
import { buildMetadata } from './metadata.js';
import { packageVersion } from './version.js';

/** ONNX operator set of the default domain that exported graphs import. */
export const OPSET_VERSION = 17;
/** IR version that goes with opset 17 (ONNX 1.12); onnxruntime 1.30 loads it. */
export const IR_VERSION = 8;

export interface ExportOptions {
  spec: ModelSpec;
  weights: NamedWeights;
  /** Graph outputs; 'features' is always included. Default: ['features']. */
  outputs?: readonly string[];
  /** Layout of the 'images' input. Default 'nchw' (see README: the caller transposes NHWC batches). */
  layout?: InputLayout;
  /** The normalisation the model was trained with: recorded always, and in the graph when bakeNormalization. */
  normalization: Normalization;
  /** Put (x - mean) / std into the graph so that it takes pixels / 255. Default false. */
  bakeNormalization?: boolean;
  metadata?: { dataset?: string; trainingConfig?: Record<string, unknown>; epoch?: number; extra?: Record<string, string> };
  /** Export weights holding NaN or infinities (refused by default: such a model answers NaN for every image). */
  allowNonFinite?: boolean;
}

function checkFiniteWeights(weights: NamedWeights): void {
  const bad = nonFiniteWeights(weights);
  if (bad.length === 0) return;
  const first = bad[0]!;
  const others = bad.length > 1 ? ` and ${bad.length - 1} more tensor(s)` : '';
  throw new UserError(`the weights are not finite: ${first.name} has ${first.nonFinite} NaN or infinite values of ${first.size}${others} (the training diverged?); a model exported from them answers NaN for every image. Export anyway with --allow-non-finite`);
}

/** Checks requested output names; 'features' comes first and always. */
export function resolveOutputs(requested: readonly string[] | undefined): OutputName[] {
  const names = (requested ?? []).map((s) => s.trim()).filter((s) => s.length > 0);
  for (const name of names) {
    if (!(OUTPUT_NAMES as readonly string[]).includes(name)) {
      throw new UserError(`unknown output '${name}': the model has ${OUTPUT_NAMES.join(', ')}`);
    }
  }
  return OUTPUT_NAMES.filter((o) => o === 'features' || names.includes(o));
}

export function exportOnnxModel(opts: ExportOptions): ModelProtoObject {
  if (!opts.allowNonFinite) checkFiniteWeights(opts.weights);
  const outputs = resolveOutputs(opts.outputs);
  const layout = opts.layout ?? 'nchw';
  if (layout !== 'nchw' && layout !== 'nhwc') throw new UserError(`unknown input layout '${String(layout)}': expected nchw or nhwc`);
  const baked = opts.bakeNormalization ?? false;
  const graph = buildOnnxGraph(opts.spec, opts.weights, { outputs, layout, bakedNormalization: baked ? opts.normalization : undefined });
  const metadata = buildMetadata({
    spec: opts.spec, outputs, layout, normalization: opts.normalization, normalizationInGraph: baked,
    dataset: opts.metadata?.dataset, trainingConfig: opts.metadata?.trainingConfig, epoch: opts.metadata?.epoch, extra: opts.metadata?.extra,
  });
  const widths = opts.spec.widths.join('-');
  return {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET_VERSION }],
    producerName: 'skd',
    producerVersion: packageVersion(),
    modelVersion: 1,
    docString: `SKD ${opts.spec.arch} backbone (widths ${widths}, ${opts.spec.numClasses} classes), eval mode, batch-norm folded; outputs ${outputs.join(', ')}`,
    graph: graph,
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
  };
}

/** The ONNX file's bytes. */
export function exportOnnx(opts: ExportOptions): Uint8Array {
  const model = exportOnnxModel(opts);
  const problems = checkOnnxModel(model);
  if (problems.length > 0) throw new Error(`the exporter built an invalid ONNX graph: ${problems.join('; ')}`);
  return encodeOnnxModel(model);
}

/** Fails early, before any long work, when `path` cannot be written: a missing or read-only folder, a directory. */
export function checkWritableTarget(path: string): void {
  const dir = dirname(path);
  let dirStat;
  try {
    dirStat = statSync(dir);
  } catch {
    throw new UserError(`cannot write ${path}: its folder ${dir} does not exist`);
  }
  if (!dirStat.isDirectory()) throw new UserError(`cannot write ${path}: ${dir} is not a folder`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UserError(`cannot write ${path}: the folder ${dir} is not writable`);
  }
  try {
    if (statSync(path).isDirectory()) throw new UserError(`cannot write ${path}: it is a directory`);
  } catch (err) {
    if (err instanceof UserError) throw err;
  }
}


/** Exports and writes atomically; returns the bytes written. */
export function writeOnnxFile(path: string, opts: ExportOptions): Uint8Array {
  const bytes = exportOnnx(opts);
  writeFileAtomic(path, bytes);
  return bytes;
}
