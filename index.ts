/**
 * skd as a library: the code behind the `skd` command, for programs that open an exported backbone, extract
 * features, fit a few-shot head, evaluate episodes or train. Importing it loads ONNX Runtime but not
 * TensorFlow.js; `train` loads TensorFlow.js when it is first called.
 *
 *     import { openModel, extractFeatures, createHead } from 'skd';
 *     const model = await openModel('gen1.onnx');
 *     const support = await extractFeatures(model, pixels, count);   // uint8 RGB, NHWC, model size
 *     const head = createHead('logreg');
 *     head.fit(support, count, model.featureDim, labels, numClasses);
 */
import { evaluateFewShot, type EvalOptions, type EvalReport } from './infer/evaluate.js';
import { datasetPadding, isDatasetName, paddingForSize } from './data/datasets.js';
import { FEW_SHOT_PROTOCOL } from './data/protocol.js';
import type { ImageSet } from './data/types.js';
import { l2NormalizeRows } from './infer/features.js';
import { FeatureExtractor, type OpenOptions } from './infer/session.js';
import type { BackendChoice } from './models/tfjs-backend.js';
import type { TrainOptions } from './train/config.js';
import type { EngineOptions } from './train/engine.js';
import type { TrainResult } from './train/loop.js';
import type { TrainHooks } from './train/progress.js';

export { FeatureExtractor, DEVICES, DEFAULT_BATCH_SIZE, type Device, type OpenOptions, type Preprocessing } from './infer/session.js';
export { createHead, headFromJSON, HEAD_KINDS, type Head, type HeadKind, type HeadOptions, type HeadState } from './infer/heads/index.js';
export { evaluateFewShot, type EvalOptions, type EvalReport, type FeatureSource } from './infer/evaluate.js';
export { l2NormalizeRows } from './infer/features.js';
export { meanConfidenceInterval } from './infer/stats.js';
export { loadDataset, DATASET_NAMES, datasetNormalization, type DatasetName, type LoadOptions } from './data/datasets.js';
export { FEW_SHOT_PROTOCOL } from './data/protocol.js';
export { UserError } from './data/errors.js';
export type { ImageSet, Normalization } from './data/types.js';
export type { BackendChoice } from './models/tfjs-backend.js';
export type { TrainConfig, TrainOptions } from './train/config.js';
export type { TrainResult } from './train/loop.js';
export type { EngineName, EngineOptions, TrainDevice } from './train/engine.js';
export type { EpochRecord } from './train/types.js';
export type { StepInfo, TrainHooks } from './train/progress.js';

/** Opens an ONNX backbone (from `skd export`, or a foreign graph described by `options.overrides`) in ONNX Runtime. */
export function openModel(path: string, options: OpenOptions = {}): Promise<FeatureExtractor> {
  return FeatureExtractor.open(path, options);
}

/**
 * L2-normalised features (count x model.featureDim, row-major) of `count` uint8 RGB images in NHWC order,
 * already at the model's input size (model.preprocessing.size), normalised as the model's metadata says.
 */
export async function extractFeatures(model: FeatureExtractor, pixels: Uint8Array, count: number): Promise<Float32Array> {
  const features = await model.extractPixels(pixels, count);
  l2NormalizeRows(features, count, model.featureDim);
  return features;
}

/** What `evaluate` takes beyond the model and the split: anything left out is the protocol's default. */
export type EvaluateOptions = Partial<Omit<EvalOptions, 'extractor' | 'set'>>;

/**
 * Few-shot evaluation as `skd eval` runs it: seeded episodes from `set`, augmented support, a head per episode.
 * Defaults: FEW_SHOT_PROTOCOL (5-way 1-shot, 15 queries, 600 episodes, 5 support augmentations), the logistic
 * regression head, the dataset's crop padding and the model's input normalisation.
 */
export function evaluate(model: FeatureExtractor, set: ImageSet, options: EvaluateOptions = {}): Promise<EvalReport> {
  const padding = isDatasetName(set.name) && set.name !== 'folder' ? datasetPadding(set.name) : paddingForSize(set.height);
  return evaluateFewShot({
    ...FEW_SHOT_PROTOCOL,
    head: 'logreg',
    padding,
    normalization: model.inputNormalization(),
    ...options,
    extractor: model,
    set,
  });
}

export interface TrainRunOptions extends TrainOptions, Omit<EngineOptions, 'log'> {
  /** TensorFlow.js backend (default 'auto': native GPU, native CPU, then WebAssembly): the tfjs engine, and validation. */
  backend?: BackendChoice;
  /** Continue the checkpoint in `out`. */
  resume?: boolean;
  /** Progress and log lines; default: none. */
  hooks?: TrainHooks;
}

/**
 * Trains Gen-0 (generation 0) or distils Gen-1 from `options.pathT` (generation 1; `generations` > 1 goes on to
 * Gen-2, ...), as `skd train gen0|gen1` does (engine 'ort' by default, or 'tfjs'), and returns one result per generation trained.
 */
export async function train(generation: 0 | 1, options: TrainRunOptions): Promise<TrainResult[]> {
  const { backend = 'auto', hooks = {}, ...trainOptions } = options;
  const { selectBackend } = await import('./models/tfjs-backend.js');
  // The ORT engine (the default) uses TensorFlow.js only for validation: its backend line would mislead.
  const { DEFAULT_ENGINE } = await import('./train/engine.js');
  const engine = trainOptions.engine ?? DEFAULT_ENGINE;
  await selectBackend(backend, { threads: trainOptions.threads, log: engine === 'tfjs' ? hooks.log ?? (() => undefined) : () => undefined });
  if (generation === 0) {
    const { trainGen0 } = await import('./train/gen0.js');
    return [await trainGen0(trainOptions, hooks)];
  }
  const { trainGen1 } = await import('./train/gen1.js');
  return trainGen1(trainOptions, hooks);
}
