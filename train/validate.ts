/**
 * Few-shot validation during training: 5-way 1-shot episodes on the val split, features from the network in
 * evaluation mode (normalised images, no augmentation), L2-normalised, nearest class centroid by cosine
 * similarity. Cheap enough to run every few epochs; the full protocol (logistic regression, augmented support,
 * 600 episodes) is `skd eval`'s job.
 */
import * as tf from '@tensorflow/tfjs-core';
import { normalizeBatch } from '../data/augment.js';
import { classIndex, sampleEpisode, type Episode } from '../data/episodes.js';
import { UserError } from '../data/errors.js';
import type { ImageSet, Normalization } from '../data/types.js';
import type { TfModel } from '../models/tfjs.js';
import type { ValidationRecord } from './types.js';

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
}

/** The episodes a validation run uses; fixed for a given val set so that epochs compare like with like. */
export function validationEpisodes(set: ImageSet, opts: Pick<ValidationOptions, 'ways' | 'shots' | 'queries' | 'episodes' | 'seed'>): { episodes: Episode[]; queries: number } {
  const numClasses = set.classNames.length;
  if (numClasses < opts.ways) throw new UserError(`few-shot validation needs ${opts.ways} classes in the ${set.split} split of ${set.name}, it has ${numClasses}`);
  const smallest = Math.min(...classIndex(set.labels, numClasses).byClass.map((c) => c.length));
  const queries = Math.min(opts.queries, smallest - opts.shots);
  if (queries < 1) throw new UserError(`few-shot validation needs ${opts.shots + 1} images per class in the ${set.split} split of ${set.name}; a class has ${smallest}`);
  const episodes: Episode[] = [];
  for (let i = 0; i < opts.episodes; i++) {
    episodes.push(sampleEpisode(set.labels, numClasses, i, { nWays: opts.ways, nShots: opts.shots, nQueries: queries, seed: opts.seed }));
  }
  return { episodes, queries };
}

/** L2-normalised features [count, dim] of the given images, evaluation mode. */
export function extractFeatures(model: TfModel, set: ImageSet, indices: Int32Array, normalization: Normalization, batchSize = 128): Float32Array {
  const dim = model.spec.featureDim;
  const out = new Float32Array(indices.length * dim);
  for (let start = 0; start < indices.length; start += batchSize) {
    const idx = indices.subarray(start, Math.min(indices.length, start + batchSize));
    const x = normalizeBatch(set, idx, normalization);
    const feats = tf.tidy(() => {
      const input = tf.tensor4d(x, [idx.length, set.height, set.width, set.channels]);
      const f = model.forward(input, false).features;
      return tf.div(f, tf.maximum(tf.norm(f, 'euclidean', 1, true), 1e-12));
    });
    out.set(feats.dataSync() as Float32Array, start * dim);
    feats.dispose();
  }
  return out;
}

/** Mean and 95% half-width (t quantile with n - 1 degrees of freedom) of per-episode accuracies. */
export function meanConfidence(values: number[]): { mean: number; ci95: number } {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, ci95: 0 };
  const s = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  return { mean, ci95: (tQuantile975(n - 1) * s) / Math.sqrt(n) };
}

/** t_{0.975, df}: exact table for small df, Cornish-Fisher expansion beyond (error < 1e-4). */
function tQuantile975(df: number): number {
  const table = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];
  if (df <= table.length) return table[df - 1];
  const z = 1.959963984540054;
  const g1 = (z ** 3 + z) / 4;
  const g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96;
  const g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384;
  return z + g1 / df + g2 / df ** 2 + g3 / df ** 3;
}

/** Runs nearest-centroid few-shot validation and returns the accuracy in percent. */
export function fewShotValidate(model: TfModel, set: ImageSet, opts: ValidationOptions): ValidationRecord {
  const { episodes, queries } = validationEpisodes(set, opts);
  // Features once per distinct image used by any episode.
  const needed = new Set<number>();
  for (const e of episodes) {
    for (const i of e.supportIdx) needed.add(i);
    for (const i of e.queryIdx) needed.add(i);
  }
  const indices = Int32Array.from([...needed].sort((a, b) => a - b));
  const row = new Map<number, number>();
  indices.forEach((img, r) => row.set(img, r));
  const feats = extractFeatures(model, set, indices, opts.normalization, opts.batchSize);
  const dim = model.spec.featureDim;
  const accuracies: number[] = [];
  for (const e of episodes) {
    const centroids = new Float64Array(opts.ways * dim);
    e.supportIdx.forEach((img, k) => {
      const r = row.get(img)! * dim;
      const c = e.supportLabels[k] * dim;
      for (let d = 0; d < dim; d++) centroids[c + d] += feats[r + d];
    });
    for (let w = 0; w < opts.ways; w++) {
      let norm = 0;
      for (let d = 0; d < dim; d++) norm += centroids[w * dim + d] ** 2;
      norm = Math.sqrt(norm) || 1;
      for (let d = 0; d < dim; d++) centroids[w * dim + d] /= norm;
    }
    let correct = 0;
    e.queryIdx.forEach((img, q) => {
      const r = row.get(img)! * dim;
      let best = -1;
      let bestScore = -Infinity;
      for (let w = 0; w < opts.ways; w++) {
        let s = 0;
        for (let d = 0; d < dim; d++) s += feats[r + d] * centroids[w * dim + d];
        if (s > bestScore) { bestScore = s; best = w; }
      }
      if (best === e.queryLabels[q]) correct++;
    });
    accuracies.push((100 * correct) / e.queryIdx.length);
  }
  const { mean, ci95 } = meanConfidence(accuracies);
  return { ways: opts.ways, shots: opts.shots, queries, episodes: episodes.length, accuracy: mean, ci95 };
}
