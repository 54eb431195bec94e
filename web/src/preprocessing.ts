/**
 * How the page turns a picture into the model's input tensor. The rules are skd's one preprocessing contract
 * (models/preprocessing.ts): the model's `skd.*` metadata, else the URL parameters or the page's form (named like
 * the command-line flags: layout, size, mean, std, inGraph, output), else the input shape for layout and size.
 * A model that says nothing about its normalisation is refused with the same message as `skd eval`/`skd serve`.
 */
import { augmentSupportPixels, normalizationTable } from '../../data/augment.js';
import { Rng } from '../../data/rng.js';
import type { OnnxInfo } from '../../infer/onnx-metadata.js';
import {
  type Preprocessing, type PreprocessingFlags, type ResolvedPreprocessing, PreprocessingError, checkTriple, inputNormalization,
  resolvePreprocessing,
} from '../../models/preprocessing.js';

export type { Preprocessing } from '../../models/preprocessing.js';
/** The settings a user can give for a model without metadata (URL parameters or the form). */
export type PreprocessingOverrides = PreprocessingFlags;
export type PageModel = ResolvedPreprocessing;

/** Thrown when a model cannot be used by the page; its message is shown as is. */
export class ModelUnusableError extends Error {
  override name = 'ModelUnusableError';
}

function parseNumberList(text: string, what: string): [number, number, number] {
  const trimmed = text.trim();
  let values: unknown[];
  try {
    values = trimmed.startsWith('[') ? (JSON.parse(trimmed) as unknown[]) : trimmed.split(',');
  } catch {
    values = [];
  }
  const numbers = Array.isArray(values) ? values.map((v) => (typeof v === 'string' && v.trim() === '' ? NaN : Number(v))) : [];
  if (numbers.length !== 3 || numbers.some((n) => !Number.isFinite(n))) {
    throw new ModelUnusableError(`${what} should be three numbers, got "${text}"`);
  }
  return numbers as [number, number, number];
}

function parseImageSize(text: string): number {
  const size = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(size) || size < 1 || size > 4096) throw new ModelUnusableError(`image size should be a whole number of pixels, got "${text}"`);
  return size;
}

/** Parses URL parameters (layout, size, mean, std, inGraph, output) that describe a model without metadata. */
export function overridesFromParams(params: URLSearchParams): PreprocessingOverrides {
  const o: PreprocessingOverrides = {};
  const layout = params.get('layout');
  if (layout !== null) {
    if (layout !== 'nchw' && layout !== 'nhwc') throw new ModelUnusableError(`layout should be nchw or nhwc, got "${layout}"`);
    o.layout = layout;
  }
  const size = params.get('size');
  if (size !== null) o.size = parseImageSize(size);
  const mean = params.get('mean');
  if (mean !== null) o.mean = parseNumberList(mean, 'mean');
  const std = params.get('std');
  if (std !== null) o.std = parseNumberList(std, 'std');
  const inGraph = params.get('inGraph');
  if (inGraph !== null) o.normalizationInGraph = inGraph === 'true' || inGraph === '1';
  const output = params.get('output');
  if (output !== null && output.trim() !== '') o.outputName = output.trim();
  try {
    if (o.std) checkTriple(o.std, 'std', true);
  } catch (err) {
    throw new ModelUnusableError((err as Error).message);
  }
  return o;
}

/** The shared resolver on the model's graph; a model it refuses becomes a ModelUnusableError with its message. */
export function resolveForPage(name: string, info: OnnxInfo, overrides: PreprocessingOverrides): PageModel {
  try {
    return resolvePreprocessing(name, info, overrides);
  } catch (err) {
    if (err instanceof PreprocessingError) throw new ModelUnusableError(err.message);
    throw err;
  }
}

const tableCache = new WeakMap<Preprocessing, Float32Array>();

/**
 * Converts RGBA pixels (already cropped and resized to size x size) into the model's input values for one
 * image, written at `offset` of `out`, with skd's one normalisation table (data/augment.ts).
 */
export function pixelsToInput(rgba: Uint8ClampedArray, p: Preprocessing, out: Float32Array, offset: number): void {
  const size = p.size;
  const plane = size * size;
  if (rgba.length !== plane * 4) throw new Error(`expected ${size}x${size} RGBA pixels`);
  let lut = tableCache.get(p);
  if (!lut) tableCache.set(p, (lut = normalizationTable(inputNormalization(p))));
  for (let c = 0; c < 3; c++) {
    const table = lut.subarray(c * 256, (c + 1) * 256);
    for (let i = 0; i < plane; i++) {
      const value = table[rgba[i * 4 + c]!]!;
      if (p.layout === 'nchw') out[offset + c * plane + i] = value;
      else out[offset + i * 3 + c] = value;
    }
  }
}

/** A one-line description of the preprocessing, for the page. */
export function describePreprocessing(p: Preprocessing): string {
  const round = (xs: number[]) => xs.map((x) => x.toFixed(4)).join(', ');
  const norm = p.normalizationInGraph ? 'normalised inside the graph' : `mean [${round(p.mean)}], std [${round(p.std)}]`;
  return `${p.size}×${p.size} ${p.channelOrder.toUpperCase()}, ${p.layout.toUpperCase()}, ${norm}`;
}

/** Most augmented copies per support picture the page makes (`?augment=N`). */
export const MAX_AUGMENT = 32;

/** `?augment=N`: augmented copies per support picture (default 0: the picture itself, as `skd serve`'s default). */
export function augmentFromParams(params: URLSearchParams): number {
  const text = params.get('augment');
  if (text === null) return 0;
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n > MAX_AUGMENT) throw new ModelUnusableError(`augment should be a whole number from 0 to ${MAX_AUGMENT}, got "${text}"`);
  return n;
}

/**
 * The evaluation protocol's test-time augmentation of one support picture (RGBA, size x size): `copies` random
 * crops with the evaluator's padding and flips, by data/augment.ts with a generator seeded 0, so a picture gets
 * the copies `skd serve` makes of a one-picture support set with seed 0 (and `skd eval` of that image).
 */
export function augmentedCopies(rgba: Uint8ClampedArray, size: number, copies: number): Uint8ClampedArray[] {
  const plane = size * size;
  const rgb = new Uint8Array(plane * 3);
  for (let i = 0; i < plane; i++) rgb.set(rgba.subarray(4 * i, 4 * i + 3), 3 * i);
  const augmented = augmentSupportPixels(rgb, 1, size, copies, new Rng(0));
  return Array.from({ length: copies }, (_, k) => {
    const out = new Uint8ClampedArray(plane * 4).fill(255);
    for (let i = 0; i < plane; i++) out.set(augmented.subarray((k * plane + i) * 3, (k * plane + i) * 3 + 3), 4 * i);
    return out;
  });
}
