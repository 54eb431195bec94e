/**
 * The seeded few-shot episode sampler of the protocol (RFS `MetaCIFAR100` / `MetaImageNet.__getitem__`):
 * episode i is drawn from a numpy-compatible MT19937 seeded with (seed + i), so with seed 0 the episodes are
 * the reference's draw for draw.
 *
 * Browser-safe: no Node imports.
 */
import { UserError } from './errors.js';
import { Rng } from './rng.js';

export interface EpisodeOptions {
  nWays: number;
  nShots: number;
  /** Queries per class. */
  nQueries: number;
  /** Episode i uses a generator seeded with seed + i. */
  seed: number;
}

export interface Episode {
  index: number;
  /** The sampled classes; label j in the episode means classes[j]. */
  classes: Int32Array;
  /** Image indices into the set, grouped by class (nShots per class, in the order of `classes`). */
  supportIdx: Int32Array;
  supportLabels: Int32Array;
  /** Image indices into the set, grouped by class (nQueries per class). */
  queryIdx: Int32Array;
  queryLabels: Int32Array;
}

/** The images of each class, in dataset order, computed once per label array. */
export interface ClassIndex {
  numClasses: number;
  /** byClass[c] = indices of the images of class c, ascending. */
  byClass: Int32Array[];
}

const indexCache = new WeakMap<Int32Array, ClassIndex>();

/** Groups image indices by label (cached per label array, so sampling many episodes does not rescan). */
export function classIndex(labels: Int32Array, numClasses: number): ClassIndex {
  const cached = indexCache.get(labels);
  if (cached && cached.numClasses === numClasses) return cached;
  const counts = new Int32Array(numClasses);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (l < 0 || l >= numClasses) throw new UserError(`label ${l} of image ${i} is outside 0..${numClasses - 1}`);
    counts[l]++;
  }
  const byClass = Array.from(counts, (n) => new Int32Array(n));
  const fill = new Int32Array(numClasses);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]][fill[labels[i]]++] = i;
  const built = { numClasses, byClass };
  indexCache.set(labels, built);
  return built;
}

function checkOptions(opts: EpisodeOptions): void {
  for (const key of ['nWays', 'nShots', 'nQueries'] as const) {
    if (!Number.isInteger(opts[key]) || opts[key] < 1) throw new UserError(`${key} must be a positive integer, got ${opts[key]}`);
  }
  if (!Number.isInteger(opts.seed) || opts.seed < 0) throw new UserError(`the episode seed must be a non-negative integer, got ${opts.seed}`);
}

/**
 * Throws a UserError when episodes cannot be drawn: more ways than classes, or a class with fewer than
 * nShots + nQueries images. `classNames` (optional) makes the message name the class.
 */
export function checkEpisodeFeasible(labels: Int32Array, numClasses: number, opts: EpisodeOptions, classNames?: string[]): void {
  checkOptions(opts);
  if (opts.nWays > numClasses) throw new UserError(`${opts.nWays}-way episodes need at least ${opts.nWays} classes, but the set has ${numClasses}`);
  const { byClass } = classIndex(labels, numClasses);
  const need = opts.nShots + opts.nQueries;
  for (let c = 0; c < numClasses; c++) {
    if (byClass[c].length < need) {
      const name = classNames?.[c] !== undefined ? `"${classNames[c]}" (class ${c})` : `class ${c}`;
      throw new UserError(`${name} has ${byClass[c].length} images, but ${opts.nShots}-shot episodes with ${opts.nQueries} queries need ${need} per class`);
    }
  }
}

/** Draws episode `index` exactly as the reference does with np.random.seed(seed + index). */
export function sampleEpisode(labels: Int32Array, numClasses: number, index: number, opts: EpisodeOptions): Episode {
  checkOptions(opts);
  const { nWays, nShots, nQueries } = opts;
  if (nWays > numClasses) throw new UserError(`${nWays}-way episodes need at least ${nWays} classes, but the set has ${numClasses}`);
  const { byClass } = classIndex(labels, numClasses);
  const rng = new Rng((opts.seed + index) >>> 0);
  // np.random.choice(self.classes, n_ways, False) with classes = 0..k-1 in first-appearance order.
  const classes = rng.choice(numClasses, nWays);
  const supportIdx = new Int32Array(nWays * nShots);
  const supportLabels = new Int32Array(nWays * nShots);
  const queryIdx = new Int32Array(nWays * nQueries);
  const queryLabels = new Int32Array(nWays * nQueries);
  for (let w = 0; w < nWays; w++) {
    const members = byClass[classes[w]];
    const count = members.length;
    if (count < nShots + nQueries) {
      throw new UserError(`class ${classes[w]} has ${count} images, but ${nShots}-shot episodes with ${nQueries} queries need ${nShots + nQueries}`);
    }
    // support = choice(range(count), n_shots, False)
    const support = rng.choice(count, nShots);
    const isSupport = new Uint8Array(count);
    for (let s = 0; s < nShots; s++) {
      isSupport[support[s]] = 1;
      supportIdx[w * nShots + s] = members[support[s]];
      supportLabels[w * nShots + s] = w;
    }
    // rest = setxor1d(arange(count), support) (sorted); queries = choice(rest, n_queries, False)
    const rest = new Int32Array(count - nShots);
    for (let i = 0, r = 0; i < count; i++) if (!isSupport[i]) rest[r++] = i;
    const pick = rng.choice(rest.length, nQueries);
    for (let q = 0; q < nQueries; q++) {
      queryIdx[w * nQueries + q] = members[rest[pick[q]]];
      queryLabels[w * nQueries + q] = w;
    }
  }
  return { index, classes, supportIdx, supportLabels, queryIdx, queryLabels };
}

/**
 * The support set repeated nAug times, as the reference tiles it before augmenting each copy
 * (`np.tile(support_xs, (n_aug_support_samples, 1, 1, 1))`): copy a of support image s is entry
 * a * supportIdx.length + s.
 */
export function tileSupport(episode: Episode, nAug: number): { indices: Int32Array; labels: Int32Array } {
  if (!Number.isInteger(nAug) || nAug < 1) throw new UserError(`n_aug_support_samples must be a positive integer, got ${nAug}`);
  const n = episode.supportIdx.length;
  const indices = new Int32Array(n * nAug);
  const labels = new Int32Array(n * nAug);
  for (let a = 0; a < nAug; a++) {
    indices.set(episode.supportIdx, a * n);
    labels.set(episode.supportLabels, a * n);
  }
  return { indices, labels };
}
