/**
 * How to turn a picture into the model's input tensor. The exporter writes this into the model's
 * metadata_props (keys `skd.*`); a model exported elsewhere can be described by URL parameters or the
 * page's form, and otherwise falls back to defaults that the page announces.
 */
import type { OnnxInfo } from './onnx-info.js';

export type Layout = 'nchw' | 'nhwc';

export interface Preprocessing {
  inputName: string;
  outputName: string;
  layout: Layout;
  /** Side of the square input, in pixels. */
  imageSize: number;
  channelOrder: 'rgb' | 'bgr';
  /** Per-channel mean and standard deviation on the 0..1 scale, in the model's channel order. */
  mean: number[];
  std: number[];
  /** When true the graph normalises by itself and takes values on the 0..1 scale. */
  normalizationInGraph: boolean;
  featureDim: number | null;
  arch: string | null;
  /** Which settings were not read from the model's metadata (shown to the user). */
  assumed: string[];
}

/** The settings a user can give for a model without metadata (URL parameters or the form). */
export interface PreprocessingOverrides {
  layout?: Layout;
  imageSize?: number;
  mean?: number[];
  std?: number[];
  normalizationInGraph?: boolean;
}

export const FEATURES_OUTPUT = 'features';
export const IMAGES_INPUT = 'images';

/** Normalisations of the datasets this project trains on (see the reference's training transforms). */
export const KNOWN_NORMALIZATIONS = {
  cifar: { mean: [0.5071, 0.4867, 0.4408], std: [0.2675, 0.2565, 0.2761] },
  imagenet84: {
    mean: [120.39586422 / 255, 115.59361427 / 255, 104.54012653 / 255],
    std: [70.68188272 / 255, 68.27635443 / 255, 72.54505529 / 255],
  },
} as const;

/** Thrown when a model cannot be used by the page; its message is shown as is. */
export class ModelUnusableError extends Error {
  override name = 'ModelUnusableError';
}

function parseNumberList(text: string, what: string): number[] {
  const trimmed = text.trim();
  const values = trimmed.startsWith('[') ? (JSON.parse(trimmed) as unknown[]) : trimmed.split(',');
  const numbers = values.map((v) => Number(v));
  if (numbers.length !== 3 || numbers.some((n) => !Number.isFinite(n))) {
    throw new ModelUnusableError(`${what} should be three numbers, got "${text}"`);
  }
  return numbers;
}

function parseImageSize(text: string): number {
  const trimmed = text.trim();
  const value = trimmed.startsWith('[') ? (JSON.parse(trimmed) as unknown[])[0] : trimmed;
  const size = Number(value);
  if (!Number.isInteger(size) || size < 1 || size > 4096) throw new ModelUnusableError(`image size should be a whole number of pixels, got "${text}"`);
  return size;
}

/** Reads layout and size from an input shape like [batch, 3, 32, 32] or [batch, 32, 32, 3]. */
function guessFromShape(shape: (number | string | null)[] | null): { layout: Layout; imageSize: number } | null {
  if (!shape || shape.length !== 4) return null;
  const [, a, b, c] = shape;
  if (a === 3 && typeof b === 'number' && b === c) return { layout: 'nchw', imageSize: b };
  if (c === 3 && typeof a === 'number' && a === b) return { layout: 'nhwc', imageSize: a };
  return null;
}

/** Parses URL parameters (layout, size, mean, std, inGraph) that describe a model without metadata. */
export function overridesFromParams(params: URLSearchParams): PreprocessingOverrides {
  const o: PreprocessingOverrides = {};
  const layout = params.get('layout');
  if (layout !== null) {
    if (layout !== 'nchw' && layout !== 'nhwc') throw new ModelUnusableError(`layout should be nchw or nhwc, got "${layout}"`);
    o.layout = layout;
  }
  const size = params.get('size');
  if (size !== null) o.imageSize = parseImageSize(size);
  const mean = params.get('mean');
  if (mean !== null) o.mean = parseNumberList(mean, 'mean');
  const std = params.get('std');
  if (std !== null) o.std = parseNumberList(std, 'std');
  const inGraph = params.get('inGraph');
  if (inGraph !== null) o.normalizationInGraph = inGraph === 'true' || inGraph === '1';
  return o;
}

/** Combines the model's metadata, its input shape, and the user's overrides; throws when the model is unusable. */
export function resolvePreprocessing(info: OnnxInfo, overrides: PreprocessingOverrides): Preprocessing {
  const outputNames = info.outputs.map((o) => o.name);
  if (!outputNames.includes(FEATURES_OUTPUT)) {
    throw new ModelUnusableError(
      `This model has no "${FEATURES_OUTPUT}" output (its outputs: ${outputNames.join(', ') || 'none'}). ` +
        'Export the backbone with its pooled features as an output named "features".',
    );
  }
  const meta = info.metadata;
  const inputName = meta['skd.input'] || IMAGES_INPUT;
  // Older ONNX files also list initializers as inputs; the image input is the named one, else the first.
  const input = info.inputs.find((i) => i.name === inputName) ?? info.inputs[0];
  if (!input) throw new ModelUnusableError('This model has no inputs.');

  const assumed: string[] = [];
  const shapeGuess = guessFromShape(input.shape);

  let layout: Layout;
  if (overrides.layout) layout = overrides.layout;
  else if (meta['skd.layout'] === 'nchw' || meta['skd.layout'] === 'nhwc') layout = meta['skd.layout'];
  else {
    layout = shapeGuess?.layout ?? 'nchw';
    assumed.push(`layout ${layout}${shapeGuess ? ' (from the input shape)' : ''}`);
  }

  let imageSize: number;
  if (overrides.imageSize) imageSize = overrides.imageSize;
  else if (meta['skd.image_size']) imageSize = parseImageSize(meta['skd.image_size']);
  else {
    imageSize = shapeGuess?.imageSize ?? 84;
    assumed.push(`image size ${imageSize}${shapeGuess ? ' (from the input shape)' : ''}`);
  }

  // Without metadata, pick the normalisation of the datasets trained at that size.
  const fallback = imageSize <= 32 ? KNOWN_NORMALIZATIONS.cifar : KNOWN_NORMALIZATIONS.imagenet84;
  const fallbackName = imageSize <= 32 ? 'CIFAR' : 'miniImageNet';
  let mean: number[];
  if (overrides.mean) mean = overrides.mean;
  else if (meta['skd.mean']) mean = parseNumberList(meta['skd.mean'], 'skd.mean');
  else {
    mean = [...fallback.mean];
    assumed.push(`${fallbackName} mean`);
  }
  let std: number[];
  if (overrides.std) std = overrides.std;
  else if (meta['skd.std']) std = parseNumberList(meta['skd.std'], 'skd.std');
  else {
    std = [...fallback.std];
    assumed.push(`${fallbackName} std`);
  }
  if (std.some((s) => s <= 0)) throw new ModelUnusableError('std values must be positive');

  let normalizationInGraph: boolean;
  if (overrides.normalizationInGraph !== undefined) normalizationInGraph = overrides.normalizationInGraph;
  else if (meta['skd.normalization_in_graph']) normalizationInGraph = meta['skd.normalization_in_graph'] === 'true';
  else normalizationInGraph = false;

  const channelOrder = meta['skd.channel_order'] === 'bgr' ? 'bgr' : 'rgb';
  const featureDimText = meta['skd.feature_dim'];
  const featureDim = featureDimText && Number.isInteger(Number(featureDimText)) ? Number(featureDimText) : null;

  return {
    inputName: input.name,
    outputName: FEATURES_OUTPUT,
    layout,
    imageSize,
    channelOrder,
    mean,
    std,
    normalizationInGraph,
    featureDim,
    arch: meta['skd.arch'] ?? null,
    assumed,
  };
}

/**
 * Converts RGBA pixels (already cropped and resized to imageSize x imageSize) into the model's input
 * values for one image, appended at `offset` of `out`.
 */
export function pixelsToInput(rgba: Uint8ClampedArray, p: Preprocessing, out: Float32Array, offset: number): void {
  const size = p.imageSize;
  const plane = size * size;
  if (rgba.length !== plane * 4) throw new Error(`expected ${size}x${size} RGBA pixels`);
  const order = p.channelOrder === 'rgb' ? [0, 1, 2] : [2, 1, 0];
  for (let c = 0; c < 3; c++) {
    const source = order[c];
    const mean = p.normalizationInGraph ? 0 : p.mean[c];
    const scale = p.normalizationInGraph ? 1 : 1 / p.std[c];
    for (let i = 0; i < plane; i++) {
      const value = (rgba[i * 4 + source] / 255 - mean) * scale;
      if (p.layout === 'nchw') out[offset + c * plane + i] = value;
      else out[offset + i * 3 + c] = value;
    }
  }
}

/** A one-line description of the preprocessing, for the page. */
export function describePreprocessing(p: Preprocessing): string {
  const round = (xs: number[]) => xs.map((x) => x.toFixed(4)).join(', ');
  const norm = p.normalizationInGraph ? 'normalised inside the graph' : `mean [${round(p.mean)}], std [${round(p.std)}]`;
  return `${p.imageSize}×${p.imageSize} ${p.channelOrder.toUpperCase()}, ${p.layout.toUpperCase()}, ${norm}`;
}
