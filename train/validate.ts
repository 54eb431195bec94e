/**
 * Few-shot validation during training (docs/method.md, Validation during training): the evaluator's protocol
 * (infer/evaluate.ts, evaluateFewShot) on the val split, with features from the network being trained in evaluation
 * mode (a TensorFlow.js model, or an ONNX Runtime session of the exporter's graph), and the prototype head. Cheap enough to run every few epochs; the full protocol
 * (logistic regression, five support augmentations, 600 episodes) is `skd eval`'s job.
 */
import * as tf from '@tensorflow/tfjs-core';
import { paddingForSize } from '../data/datasets.js';
import { classIndex } from '../data/episodes.js';
import { UserError } from '../data/errors.js';
import type { ImageSet, Normalization } from '../data/types.js';
import { batchedFeatureSource, evaluateFewShot, type EvalOptions, type FeatureSource } from '../infer/evaluate.js';
import type { TfModel } from '../models/tfjs.js';
import type { ValidationRecord } from './types.js';

/** Images per forward call when the evaluator does not say. */
const DEFAULT_BATCH = 128;

export interface ValidationOptions {
  ways: number;
  shots: number;
  /** Queries per class (reduced automatically when the val classes are small). */
  queries: number;
  episodes: number;
  /** Episode i is seeded with seed + i (the reference's protocol uses seed 0). */
  seed: number;
  normalization: Normalization;
  /** Images per forward call. */
  batchSize?: number;
  /** Augmented copies of each support image (the reference's n_aug_support_samples; 0 and 1 both mean one). Default 1. */
  augSupportSamples?: number;
}

/**
 * The training network as the evaluator's feature source: square RGB images of `size` pixels, already normalised,
 * in NHWC; the feature output in evaluation mode (the evaluator L2-normalises the rows).
 */
export function modelFeatureSource(model: TfModel, size: number): FeatureSource {
  return batchedFeatureSource(size, 3, model.spec.featureDim, DEFAULT_BATCH, (images, m) => {
    const feats = tf.tidy(() => model.forward(tf.tensor4d(images, [m, size, size, 3]), false).features);
    const data = feats.dataSync() as Float32Array;
    feats.dispose();
    return data;
  });
}

/** Queries per class: the asked number, fewer when the smallest val class has too few images. */
function queriesFor(set: ImageSet, opts: Pick<ValidationOptions, 'ways' | 'shots' | 'queries'>): number {
  const numClasses = set.classNames.length;
  if (numClasses < opts.ways) throw new UserError(`few-shot validation needs ${opts.ways} classes in the ${set.split} split of ${set.name}, it has ${numClasses}`);
  const smallest = Math.min(...classIndex(set.labels, numClasses).byClass.map((c) => c.length));
  const queries = Math.min(opts.queries, smallest - opts.shots);
  if (queries < 1) throw new UserError(`few-shot validation needs ${opts.shots + 1} images per class in the ${set.split} split of ${set.name}; a class has ${smallest}`);
  return queries;
}

/** The evaluator's options for a validation run. */
function validationEvalOptions(source: FeatureSource, set: ImageSet, opts: ValidationOptions): EvalOptions {
  return {
    extractor: source,
    set, nWays: opts.ways, nShots: opts.shots, nQueries: queriesFor(set, opts), nTestRuns: opts.episodes,
    // One augmented copy of each support image unless asked (0 and 1 both mean one, as in the reference).
    nAugSupportSamples: opts.augSupportSamples ?? 1, seed: opts.seed, head: 'proto', padding: paddingForSize(set.height),
    normalization: opts.normalization, batchSize: opts.batchSize ?? DEFAULT_BATCH,
  };
}

/** Runs few-shot validation; accuracy and its 95% half-width in percent (the half-width is NaN for one episode). */
export async function fewShotValidate(source: FeatureSource, set: ImageSet, opts: ValidationOptions): Promise<ValidationRecord> {
  if (source.preprocessing.size !== set.height) throw new UserError(`validation images are ${set.height} pixels, the network takes ${source.preprocessing.size}`);
  const options = validationEvalOptions(source, set, opts);
  const report = await evaluateFewShot(options);
  return {
    ways: opts.ways, shots: opts.shots, queries: options.nQueries, episodes: report.accuracies.length,
    augSupportSamples: options.nAugSupportSamples, accuracy: report.meanPercent, ci95: report.ci95Percent,
  };
}
