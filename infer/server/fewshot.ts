/**
 * The work behind the routes: decode images, augment support images, extract L2-normalised features
 * through the batcher, fit a head on a support set and score queries.
 */
import { Rng } from '../../data/rng.js';
import { firstNonFiniteRow, l2NormalizeRows } from '../features.js';
import { createHead } from '../heads/index.js';
import type { Head, HeadKind } from '../heads/types.js';
import { augmentSupportPixels } from '../../data/augment.js';
import type { ServerContext } from './context.js';
import { HttpError, badRequest } from './errors.js';
import { decodeImages, type DecodedImages, type ImageInput } from './images.js';

export interface SupportRequest {
  support: { label: string; image: ImageInput }[];
  labels?: string[];
  augment?: number;
  seed?: number;
  head?: HeadKind;
  C?: number;
}

export interface SupportSet {
  /** Class names in the order of the head's outputs. */
  labelNames: string[];
  /** Class index of each support entry. */
  entryLabels: number[];
  inputs: ImageInput[];
}

/** Resolves class names and checks that every declared class has support images. */
export function parseSupport(req: SupportRequest): SupportSet {
  const labelNames = req.labels ? [...req.labels] : [];
  const index = new Map(labelNames.map((name, i) => [name, i]));
  const entryLabels: number[] = [];
  req.support.forEach((entry, i) => {
    let k = index.get(entry.label);
    if (k === undefined) {
      if (req.labels) throw badRequest(`body.support[${i}].label`, `unknown label ${JSON.stringify(entry.label)}; "labels" lists ${req.labels.map((l) => JSON.stringify(l)).join(', ')}`);
      k = labelNames.length;
      labelNames.push(entry.label);
      index.set(entry.label, k);
    }
    entryLabels.push(k);
  });
  const used = new Set(entryLabels);
  labelNames.forEach((name, k) => {
    if (!used.has(k)) throw badRequest(`body.labels[${k}]`, `class ${JSON.stringify(name)} has no support images`);
  });
  if (labelNames.length < 2) throw badRequest('body.support', `a support set needs at least two classes; it has ${labelNames.length} (${labelNames.map((l) => JSON.stringify(l)).join(', ')})`);
  return { labelNames, entryLabels, inputs: req.support.map((s) => s.image) };
}

/**
 * L2-normalised features of decoded images, through the batcher (one job, so one or few runs). Features that
 * are not finite (a model with NaN weights, or one that overflows) are refused, so that no answer or stored
 * classifier is made of them.
 */
export async function embedPixels(ctx: ServerContext, pixels: Uint8Array, count: number): Promise<Float32Array> {
  const features = await ctx.batcher.submit(pixels, count);
  const bad = firstNonFiniteRow(features, count, ctx.extractor.featureDim);
  if (bad >= 0) {
    throw new HttpError(500, 'model', `the model gave non-finite features (NaN or infinity) for image ${bad + 1} of the ${count} it was given; the model file is broken (its weights are not finite, or it overflows): export it again from a good checkpoint`);
  }
  l2NormalizeRows(features, count, ctx.extractor.featureDim);
  return features;
}

export const supportField = (i: number): string => `body.support[${i}].image`;
export const queryField = (i: number): string => `body.queries[${i}]`;
export const imageField = (i: number): string => `body.images[${i}]`;

export function decode(ctx: ServerContext, inputs: ImageInput[], fieldOf: (i: number) => string): Promise<DecodedImages> {
  return decodeImages(inputs, fieldOf, ctx.size, ctx.limits);
}

export interface PreparedSupport {
  pixels: Uint8Array;
  count: number;
  labels: Int32Array;
}

/** Decodes the support images, expands raw batches, and applies test-time augmentation. */
export async function prepareSupport(ctx: ServerContext, set: SupportSet, augment: number, seed: number): Promise<PreparedSupport> {
  if (augment > ctx.limits.maxAugment) throw badRequest('body.augment', `body.augment must be at most ${ctx.limits.maxAugment} (the server's --max-augment); got ${augment}`);
  const decoded = await decode(ctx, set.inputs, supportField);
  const perImage: number[] = [];
  decoded.perInput.forEach((n, i) => {
    for (let j = 0; j < n; j++) perImage.push(set.entryLabels[i] as number);
  });
  if (augment === 0) return { pixels: decoded.pixels, count: decoded.count, labels: Int32Array.from(perImage) };
  // The evaluator's augmentation and order (np.tile: every image, then again), so `skd eval` and `skd serve` agree.
  const pixels = augmentSupportPixels(decoded.pixels, decoded.count, ctx.size, augment, new Rng(seed));
  const labels = new Int32Array(decoded.count * augment);
  for (let a = 0; a < augment; a++) labels.set(perImage, a * decoded.count);
  return { pixels, count: decoded.count * augment, labels };
}

export function fitHead(kind: HeadKind, C: number | undefined, features: Float32Array, n: number, d: number, labels: Int32Array, numClasses: number): Head {
  const head = createHead(kind, C === undefined ? {} : { C });
  head.fit(features, n, d, labels, numClasses);
  return head;
}

export interface Prediction {
  label: string;
  probabilities: number[];
}

export function predictions(head: Head, features: Float32Array, n: number, labelNames: string[]): Prediction[] {
  const k = labelNames.length;
  const proba = head.predictProba(features, n);
  const out: Prediction[] = [];
  for (let i = 0; i < n; i++) {
    const row = Array.from(proba.subarray(i * k, (i + 1) * k));
    let best = 0;
    for (let c = 1; c < k; c++) if ((row[c] as number) > (row[best] as number)) best = c;
    out.push({ label: labelNames[best] as string, probabilities: row });
  }
  return out;
}
