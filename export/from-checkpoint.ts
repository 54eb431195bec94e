/**
 * `skd export` as a library call: checkpoint -> ONNX file (atomic), with an optional fidelity check.
 * The normalisation and dataset come from the checkpoint's training configuration.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { datasetNormalization, isDatasetName, loadDataset, type DatasetName } from '../data/datasets.js';
import { UserError } from '../data/errors.js';
import type { FloatTensor } from '../data/types.js';
import { SKD_KEYS } from '../models/preprocessing.js';
import type { ModelSpec, NamedWeights } from '../models/spec.js';
import { isPthPath, readPthCheckpoint } from '../torch/checkpoint.js';
import { readCheckpoint } from '../train/checkpoint.js';
import type { InputLayout } from './graph.js';
import { writeFileAtomic } from '../data/atomic-write.js';
import { checkWritableTarget, exportOnnx, resolveOutputs } from './onnx.js';
import { formatVerifyReport, verifyExport, type VerifyReport } from './verify.js';

export interface ExportCheckpointOptions {
  /** A checkpoint file (skd's safetensors or a PyTorch .pth of the reference), or a training output folder (its highest gen<N>.safetensors is used). */
  checkpoint: string;
  out: string;
  outputs?: readonly string[];
  layout?: InputLayout;
  bakeNormalization?: boolean;
  /** Dataset whose normalisation to record, when the checkpoint's configuration names none. */
  dataset?: string;
  verify?: boolean;
  /** Real images used by the check, besides random ones (default 16; 0 = random only). */
  verifyImages?: number;
  backend?: 'cpu' | 'wasm';
  /** Export weights that hold NaN or infinities (refused by default). */
  allowNonFinite?: boolean;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
}

export interface ExportCheckpointResult {
  checkpoint: string;
  out: string;
  bytes: number;
  outputs: string[];
  dataset: string;
  verification?: VerifyReport;
}

/** The checkpoint file a path names: the file itself, or the last generation's checkpoint in a folder. */
export function resolveCheckpointPath(path: string): string {
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    return path; // readCheckpoint reports the missing file
  }
  if (!isDir) return path;
  const gens = readdirSync(path)
    .map((f) => /^gen(\d+)\.safetensors$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(b[1]) - Number(a[1]));
  if (gens.length === 0) throw new UserError(`${path} is a folder without checkpoints (expected gen0.safetensors, gen1.safetensors, ...)`);
  return join(path, gens[0][0]);
}

/** A few test (or validation) images of the training dataset as pixels / 255, or a reason why not. */
async function loadRealImages(config: Record<string, unknown>, dataset: DatasetName, size: number, count: number): Promise<FloatTensor | string> {
  const dataRoot = typeof config.dataRoot === 'string' ? config.dataRoot : undefined;
  // The toy set's own seed, as training used it (checkpoints from before --toy-seed generated it from --seed).
  const toySeed = typeof config.toySeed === 'number' ? config.toySeed : typeof config.seed === 'number' ? config.seed : 0;
  const toy = { seed: toySeed, imagesPerClass: typeof config.imagesPerClass === 'number' ? config.imagesPerClass : undefined };
  let lastError = '';
  for (const split of ['test', 'val']) {
    try {
      const set = await loadDataset({ dataset, dataRoot, split, imageSize: size, toy });
      if (set.height !== size || set.width !== size || set.channels !== 3) return `${dataset} images are ${set.height}x${set.width}x${set.channels}, the model takes ${size}x${size}x3`;
      const n = Math.min(count, set.count);
      const data = new Float32Array(n * size * size * 3);
      const px = set.images.images(0, n);
      for (let i = 0; i < data.length; i++) data[i] = px[i] / 255;
      return { data, shape: [n, size, size, 3] };
    } catch (err) {
      lastError = (err as Error).message;
    }
  }
  return lastError;
}

/** What export needs from a checkpoint of either kind. */
export interface LoadedCheckpoint {
  path: string;
  spec: ModelSpec;
  weights: NamedWeights;
  config: Record<string, unknown>;
  epoch: number;
  generation: number;
  /** Lines to show the user (a PyTorch checkpoint's missing rotation head, ignored tensors). */
  notes: string[];
}

/** Reads skd's checkpoint or a PyTorch .pth (by extension); `dataset` fills in what a .pth does not say. */
export async function loadAnyCheckpoint(path: string, dataset?: string): Promise<LoadedCheckpoint> {
  if (isPthPath(path)) {
    const p = readPthCheckpoint(path, { dataset });
    const notes = [`read ${path}: PyTorch ${p.format} format, ${p.dtype}, ${p.spec.arch} widths ${p.spec.widths.join('-')}, ${p.spec.numClasses} classes`, ...p.notes];
    return { path, spec: p.spec, weights: p.weights, config: p.config, epoch: p.epoch ?? 0, generation: 0, notes };
  }
  const ckpt = await readCheckpoint(path);
  return { path, spec: ckpt.spec, weights: ckpt.weights, config: ckpt.config, epoch: ckpt.epoch, generation: ckpt.generation, notes: [] };
}

export async function exportCheckpoint(opts: ExportCheckpointOptions): Promise<ExportCheckpointResult> {
  const log = opts.log ?? (() => undefined);
  const outputs = resolveOutputs(opts.outputs);
  const verifyImages = opts.verifyImages ?? 16;
  if (!Number.isInteger(verifyImages) || verifyImages < 0) throw new UserError(`--verify-images must be a whole number of images, 0 or more; got ${opts.verifyImages}`);
  checkWritableTarget(opts.out);
  const path = resolveCheckpointPath(opts.checkpoint);
  const ckpt = await loadAnyCheckpoint(path, opts.dataset);
  for (const n of ckpt.notes) log(n);
  const configDataset = typeof ckpt.config.dataset === 'string' ? ckpt.config.dataset : undefined;
  const datasetName = opts.dataset ?? configDataset;
  if (!datasetName) throw new UserError(`${path}: the training configuration names no dataset; pass --dataset to say which normalisation the model expects`);
  if (!isDatasetName(datasetName)) throw new UserError(`unknown dataset '${datasetName}' (expected one of CIFAR-FS, FC100, miniImageNet, tieredImageNet, folder, toy)`);
  const normalization = datasetNormalization(datasetName);

  const onnx = exportOnnx({
    spec: ckpt.spec, weights: ckpt.weights, outputs, layout: opts.layout, normalization, bakeNormalization: opts.bakeNormalization, allowNonFinite: opts.allowNonFinite,
    metadata: { dataset: datasetName, trainingConfig: ckpt.config, epoch: ckpt.epoch, extra: { [SKD_KEYS.generation]: String(ckpt.generation) } },
  });
  log(`exported ${ckpt.spec.arch} (widths ${ckpt.spec.widths.join('-')}, ${ckpt.spec.imageSize}x${ckpt.spec.imageSize}) from ${path}: outputs ${outputs.join(', ')}`);

  let verification: VerifyReport | undefined;
  if (opts.verify) {
    let images: FloatTensor | undefined;
    if (verifyImages > 0) {
      const loaded = await loadRealImages(ckpt.config, datasetName, ckpt.spec.imageSize, verifyImages);
      if (typeof loaded === 'string') log(`verify: no ${datasetName} images available (${loaded}); checking random images only`);
      else images = loaded;
    }
    // Throws UserError above the tolerance, before anything is written.
    verification = await verifyExport({ spec: ckpt.spec, weights: ckpt.weights, onnx, images, backend: opts.backend });
    log(`verify: ${formatVerifyReport(verification)}`);
  }
  writeFileAtomic(opts.out, onnx);
  log(`wrote ${opts.out} (${(onnx.length / 2 ** 20).toFixed(2)} MiB)`);
  return { checkpoint: path, out: opts.out, bytes: onnx.length, outputs, dataset: datasetName, verification };
}
