/**
 * The few-shot evaluation protocol (RFS / SKD `meta_test`; docs/method.md, Few-shot evaluation):
 *
 * - episode i is drawn with numpy's MT19937 seeded with seed + i (data/episodes.ts): N classes, K support and Q
 *   query images per class;
 * - each support image is augmented n_aug times (RandomCrop with padding, horizontal flip, normalise; no colour
 *   jitter) and the unaugmented image is not kept. As in the reference (`if n_aug_support_samples > 1: tile`),
 *   n_aug = 0 and n_aug = 1 both mean one augmented copy of each support image;
 * - queries are normalised only;
 * - features are rows of the model's feature output, L2-normalised;
 * - a head (multinomial logistic regression, C = 1, by default) is fitted per episode on the support rows and
 *   scores the queries; the report gives 100 * accuracy per episode, its mean and t-based 95% half-width.
 *
 * Speed: the unaugmented features of every image used as a query are extracted once and reused by every episode;
 * the support augmentations of several episodes go through the network in one batch. The augmentation generator
 * of episode i is Rng.derive(seed, i), so results do not depend on how episodes are batched.
 */
import { augmentBatch, normalizeBatch } from '../data/augment.js';
import { checkEpisodeFeasible, sampleEpisode, tileSupport, type Episode } from '../data/episodes.js';
import { UserError } from '../data/errors.js';
import { Rng } from '../data/rng.js';
import type { ImageSet, Normalization } from '../data/types.js';
import { firstNonFiniteRow, l2NormalizeRows } from './features.js';
import { createHead, type HeadKind } from './heads/index.js';
import type { Preprocessing } from './session.js';
import { meanConfidenceInterval } from './stats.js';

/** What the evaluator needs of a feature extractor (FeatureExtractor, or a stand-in in tests). */
export interface FeatureSource {
  readonly featureDim: number;
  readonly preprocessing: Pick<Preprocessing, 'size'>;
  extract(images: Float32Array, count: number, opts?: { batchSize?: number }): Promise<Float32Array>;
}

/**
 * A FeatureSource over a network in memory: `forward` maps `m` normalised NHWC images (size x size x channels
 * each) to their m x featureDim features, and extract runs it on batches of `batchSize` (default `defaultBatch`,
 * else all the images at once).
 */
export function batchedFeatureSource(
  size: number, channels: number, featureDim: number, defaultBatch: number | undefined,
  forward: (images: Float32Array, m: number) => Promise<Float32Array> | Float32Array,
): FeatureSource {
  const pixels = size * size * channels;
  return {
    featureDim,
    preprocessing: { size },
    async extract(images, count, opts) {
      const batch = opts?.batchSize ?? defaultBatch ?? count;
      const out = new Float32Array(count * featureDim);
      for (let start = 0; start < count; start += batch) {
        const m = Math.min(batch, count - start);
        out.set(await forward(images.subarray(start * pixels, (start + m) * pixels), m), start * featureDim);
      }
      return out;
    },
  };
}

export interface RunningResult { mean: number; halfWidth: number }

export interface EvalOptions {
  extractor: FeatureSource;
  set: ImageSet;
  nWays: number;
  nShots: number;
  nQueries: number;
  nTestRuns: number;
  nAugSupportSamples: number;
  seed: number;
  head: HeadKind;
  /** RandomCrop padding of the support augmentation. */
  padding: number;
  /** Applied to pixels / 255 before the network (the model's expected input normalisation). */
  normalization: Normalization;
  /** Images per onnxruntime run. Default: the extractor's (FeatureExtractor: DEFAULT_BATCH_SIZE, 32). */
  batchSize?: number;
  /** About how many support images (over several episodes) to augment and encode together. Default 512. */
  supportBatchImages?: number;
  /** After each episode: its index, its accuracy (0-1), and the running mean and half-width in percent. */
  onEpisode?: (index: number, accuracy: number, running: RunningResult) => void;
  /** Progress of the query-feature pass: images encoded so far out of total. */
  onQueryProgress?: (done: number, total: number) => void;
}

export interface EvalTimings {
  /** Normalising and encoding the query images (once). */
  queryFeaturesMs: number;
  /** Augmenting the support images. */
  supportAugmentMs: number;
  /** Encoding the support images. */
  supportFeaturesMs: number;
  /** Fitting heads and predicting queries (with normalising the support rows and gathering the query rows). */
  headMs: number;
  totalMs: number;
  /** Mean head time per episode (everything in headMs). */
  headMsPerEpisode: number;
  /** Mean time per episode of the head's fit alone. */
  headFitMsPerEpisode: number;
}

export interface EvalReport {
  config: {
    nWays: number; nShots: number; nQueries: number; nTestRuns: number; nAugSupportSamples: number;
    /** Augmented copies actually made of each support image (max(1, n_aug), as the reference). */
    supportCopies: number;
    seed: number; head: HeadKind; padding: number; normalization: Normalization;
    dataset: string; split: string; featureDim: number;
  };
  /** Accuracy of each episode, 0-1. */
  accuracies: number[];
  /** Mean of 100 * accuracy. */
  meanPercent: number;
  /** 95% half-width of 100 * accuracy (Student t, n - 1 degrees of freedom). */
  ci95Percent: number;
  /** Distinct images whose unaugmented features were encoded for queries. */
  queryImagesEncoded: number;
  /** Support images encoded (augmented copies). */
  supportImagesEncoded: number;
  timings: EvalTimings;
}

/** Checks options against the set and the extractor; throws UserError before any work. */
export function checkEvalOptions(opts: Omit<EvalOptions, 'extractor'> & { extractor?: FeatureSource }): void {
  const { set } = opts;
  for (const key of ['nWays', 'nShots', 'nQueries', 'nTestRuns'] as const) {
    if (!Number.isInteger(opts[key]) || opts[key] < 1) throw new UserError(`${flagName(key)} must be a positive integer, got ${opts[key]}`);
  }
  if (!Number.isInteger(opts.nAugSupportSamples) || opts.nAugSupportSamples < 0) {
    throw new UserError(`--n_aug_support_samples must be a non-negative integer, got ${opts.nAugSupportSamples}`);
  }
  if (!Number.isInteger(opts.seed) || opts.seed < 0) throw new UserError(`--seed must be a non-negative integer, got ${opts.seed}`);
  if (!Number.isInteger(opts.padding) || opts.padding < 0) throw new UserError(`padding must be a non-negative integer, got ${opts.padding}`);
  if (opts.nWays < 2 && opts.head === 'logreg') throw new UserError('--n_ways must be at least 2 for a classifier head');
  if (set.channels !== 3) throw new UserError(`${set.name}/${set.split}: images have ${set.channels} channels, expected RGB (3)`);
  if (opts.extractor) {
    const size = opts.extractor.preprocessing.size;
    if (set.height !== size || set.width !== size) {
      throw new UserError(`${set.name}/${set.split} has ${set.height}x${set.width} images but the model takes ${size}x${size} (check --size)`);
    }
    if (!(opts.extractor.featureDim >= 1)) throw new UserError(`the model's feature output has ${opts.extractor.featureDim} values; a head needs at least 1`);
  }
  checkEpisodeFeasible(set.labels, set.classNames.length, { nWays: opts.nWays, nShots: opts.nShots, nQueries: opts.nQueries, seed: opts.seed }, set.classNames);
}

/** NaN in, NaN out would report chance accuracy as a result: refuse features that are not finite. */
function checkFinite(features: Float32Array, n: number, d: number, imageOfRow: (row: number) => number, set: ImageSet): void {
  const row = firstNonFiniteRow(features, n, d);
  if (row < 0) return;
  throw new UserError(`the model gave non-finite features (NaN or infinity) for image ${imageOfRow(row)} of ${set.name}/${set.split}: its weights are not finite or it overflows; export it again from a good checkpoint`);
}

function flagName(key: string): string {
  return '--' + key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

export async function evaluateFewShot(opts: EvalOptions): Promise<EvalReport> {
  checkEvalOptions(opts);
  const started = performance.now();
  const { extractor, set, nWays, nShots, nQueries, nTestRuns, seed } = opts;
  const D = extractor.featureDim;
  const batchSize = opts.batchSize; // undefined: the extractor's default
  const copies = Math.max(1, opts.nAugSupportSamples);
  const numClasses = set.classNames.length;
  const episodeOpts = { nWays, nShots, nQueries, seed };

  const episodes: Episode[] = [];
  for (let i = 0; i < nTestRuns; i++) episodes.push(sampleEpisode(set.labels, numClasses, i, episodeOpts));

  // Unaugmented features of every image that some episode uses as a query, encoded once.
  let t0 = performance.now();
  const queryRow = new Int32Array(set.count).fill(-1);
  const queryImages: number[] = [];
  for (const e of episodes) {
    for (const idx of e.queryIdx) if (queryRow[idx] === -1) { queryRow[idx] = queryImages.length; queryImages.push(idx); }
  }
  const queryFeatures = new Float32Array(queryImages.length * D);
  const chunk = Math.max(batchSize ?? 0, 512); // images normalised at a time (bounds memory; one progress report each)
  for (let start = 0; start < queryImages.length; start += chunk) {
    const idx = queryImages.slice(start, start + chunk);
    const f = await extractor.extract(normalizeBatch(set, idx, opts.normalization), idx.length, { batchSize });
    checkFinite(f, idx.length, D, (row) => idx[row]!, set);
    queryFeatures.set(f, start * D);
    opts.onQueryProgress?.(start + idx.length, queryImages.length);
  }
  l2NormalizeRows(queryFeatures, queryImages.length, D);
  const queryFeaturesMs = performance.now() - t0;

  const perEpisodeSupport = nWays * nShots * copies;
  const episodesPerBatch = Math.max(1, Math.floor((opts.supportBatchImages ?? 512) / perEpisodeSupport));
  const nq = nWays * nQueries;
  const queryBatch = new Float32Array(nq * D);
  const accuracies: number[] = [];
  let supportAugmentMs = 0, supportFeaturesMs = 0, headMs = 0, headFitMs = 0, supportImagesEncoded = 0;

  for (let first = 0; first < nTestRuns; first += episodesPerBatch) {
    const group = episodes.slice(first, first + episodesPerBatch);
    t0 = performance.now();
    const imageSize = set.height * set.width * set.channels;
    const images = new Float32Array(group.length * perEpisodeSupport * imageSize);
    const supportLabels: Int32Array[] = [];
    group.forEach((e, g) => {
      const tiled = tileSupport(e, copies);
      const rng = Rng.derive(seed, e.index);
      images.set(augmentBatch(set, tiled.indices, rng, { padding: opts.padding, flip: true, jitter: 0, normalization: opts.normalization }), g * perEpisodeSupport * imageSize);
      supportLabels.push(tiled.labels);
    });
    supportAugmentMs += performance.now() - t0;
    t0 = performance.now();
    const supportFeatures = await extractor.extract(images, group.length * perEpisodeSupport, { batchSize });
    supportFeaturesMs += performance.now() - t0;
    checkFinite(supportFeatures, group.length * perEpisodeSupport, D, (row) => {
      const e = group[Math.floor(row / perEpisodeSupport)]!;
      return e.supportIdx[(row % perEpisodeSupport) % e.supportIdx.length]!; // tiled: copy a of image s is row a * shots + s
    }, set);
    supportImagesEncoded += group.length * perEpisodeSupport;

    t0 = performance.now();
    for (let g = 0; g < group.length; g++) {
      const e = group[g]!;
      const support = supportFeatures.subarray(g * perEpisodeSupport * D, (g + 1) * perEpisodeSupport * D);
      l2NormalizeRows(support, perEpisodeSupport, D);
      for (let q = 0; q < nq; q++) {
        const row = queryRow[e.queryIdx[q]!]!;
        queryBatch.set(queryFeatures.subarray(row * D, (row + 1) * D), q * D);
      }
      const head = createHead(opts.head);
      const fitStart = performance.now();
      head.fit(support, perEpisodeSupport, D, supportLabels[g]!, nWays);
      headFitMs += performance.now() - fitStart;
      const pred = head.predict(queryBatch, nq);
      let correct = 0;
      for (let q = 0; q < nq; q++) if (pred[q] === e.queryLabels[q]) correct++;
      const acc = correct / nq;
      accuracies.push(acc);
      if (opts.onEpisode) {
        const running = meanConfidenceInterval(accuracies.map((a) => 100 * a));
        opts.onEpisode(e.index, acc, { mean: running.mean, halfWidth: running.halfWidth });
      }
    }
    headMs += performance.now() - t0;
  }

  const ci = meanConfidenceInterval(accuracies.map((a) => 100 * a));
  const totalMs = performance.now() - started;
  return {
    config: {
      nWays, nShots, nQueries, nTestRuns, nAugSupportSamples: opts.nAugSupportSamples, supportCopies: copies, seed,
      head: opts.head, padding: opts.padding, normalization: opts.normalization, dataset: set.name, split: set.split, featureDim: D,
    },
    accuracies,
    meanPercent: ci.mean,
    ci95Percent: ci.halfWidth,
    queryImagesEncoded: queryImages.length,
    supportImagesEncoded,
    timings: { queryFeaturesMs, supportAugmentMs, supportFeaturesMs, headMs, totalMs, headMsPerEpisode: headMs / nTestRuns, headFitMsPerEpisode: headFitMs / nTestRuns },
  };
}
