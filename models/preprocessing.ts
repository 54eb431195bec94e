/**
 * The preprocessing contract of a backbone graph: the `skd.*` metadata keys that say how to feed it, the
 * `Preprocessing` they describe, and the one resolver that turns a graph's metadata, the flags describing a
 * foreign graph and the caller's defaults into it. Export writes these keys; evaluation, serving, the page, the
 * teacher loader and the export check read them here, so they accept and refuse the same graphs with the same
 * messages. Browser-safe (no Node imports). docs/onnx-format.md documents the rules.
 *
 * Precedence, per setting: a flag (command-line option, or the page's form / URL parameter of the same name) wins,
 * then the metadata, then the graph's input shape (layout and size only), then the caller's defaults. Mean and
 * std are never guessed: a graph that takes normalised input and says nothing about its normalisation is refused.
 */

/** The metadata_props keys written by `skd export` (export/metadata.ts). */
export const SKD_KEYS = {
  layout: 'skd.layout',
  imageSize: 'skd.image_size',
  channelOrder: 'skd.channel_order',
  valueRange: 'skd.value_range',
  mean: 'skd.mean',
  std: 'skd.std',
  normalizationInGraph: 'skd.normalization_in_graph',
  featureDim: 'skd.feature_dim',
  arch: 'skd.arch',
  widths: 'skd.widths',
  numClasses: 'skd.num_classes',
  dataset: 'skd.dataset',
  specVersion: 'skd.spec_version',
  version: 'skd.version',
  trainingConfig: 'skd.training_config',
  outputs: 'skd.outputs',
  input: 'skd.input',
  epoch: 'skd.epoch',
  generation: 'skd.generation',
} as const;

export type Layout = 'nchw' | 'nhwc';
export const LAYOUTS: readonly Layout[] = ['nchw', 'nhwc'];
export type Triple = [number, number, number];

/** The output a head reads when nothing names another one. */
export const FEATURES_OUTPUT = 'features';
/** The input's name in graphs that skd exports. */
export const IMAGES_INPUT = 'images';

export interface Preprocessing {
  /** Layout of the image input: NCHW (PyTorch, skd export default) or NHWC. */
  layout: Layout;
  /** Input height = width in pixels. */
  size: number;
  channelOrder: 'rgb';
  /** Per-channel mean and std on the 0-1 scale, RGB. */
  mean: Triple;
  std: Triple;
  /** True when the graph normalises itself (feed pixels / 255); false when it takes (pixels / 255 - mean) / std. */
  normalizationInGraph: boolean;
  inputName: string;
  outputName: string;
}

/** One input or output of a graph: its name, its shape when known, its ONNX element type when known. */
export interface GraphValue {
  name: string;
  /** One entry per dimension: a number when fixed, a symbolic name or null when not; null when the rank is unknown. */
  shape: (number | string | null)[] | null;
  /** TensorProto.DataType (1 = float32); null when not stated. */
  elemType?: number | null;
}

/** What the resolver needs from a graph (infer/onnx-metadata.ts reads it from the bytes, in Node and the page). */
export interface GraphDescription {
  metadata: Record<string, string>;
  /** The graph's real inputs (initializers excluded). */
  inputs: GraphValue[];
  outputs: GraphValue[];
}

/** Settings describing a graph, from flags; each wins over the metadata. */
export type PreprocessingFlags = Partial<Preprocessing>;

export interface ResolvedPreprocessing {
  preprocessing: Preprocessing;
  /** Width of the output: skd.feature_dim for an exported graph's features, else the output's fixed last dimension. */
  featureDim: number | null;
  arch: string | null;
  /** Settings taken from the input shape or the caller's defaults rather than the metadata or a flag (for a notice). */
  assumed: string[];
}

/** A graph that cannot be used as described; the message names the graph and what to pass. */
export class PreprocessingError extends Error {
  override name = 'PreprocessingError';
}

const FLOAT = 1;
const ELEMENT_TYPES: Record<number, string> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64', 16: 'bfloat16',
};

/** The preprocessing entries of an exported graph's metadata (export/metadata.ts adds the model facts). */
export function preprocessingMetadata(p: Omit<Preprocessing, 'outputName' | 'channelOrder'>): Record<string, string> {
  return {
    [SKD_KEYS.layout]: p.layout,
    [SKD_KEYS.imageSize]: String(p.size),
    [SKD_KEYS.channelOrder]: 'rgb',
    [SKD_KEYS.valueRange]: p.normalizationInGraph ? '0-1' : 'normalized',
    [SKD_KEYS.mean]: JSON.stringify(p.mean),
    [SKD_KEYS.std]: JSON.stringify(p.std),
    [SKD_KEYS.normalizationInGraph]: String(p.normalizationInGraph),
    [SKD_KEYS.input]: p.inputName,
  };
}

/** Checks a mean or std given by a flag or found in metadata: three finite numbers, std positive. */
export function checkTriple(value: unknown, what: string, positive: boolean): Triple {
  if (!Array.isArray(value) || value.length !== 3 || !value.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new PreprocessingError(`${what} must be three numbers, got ${JSON.stringify(value)}`);
  }
  if (positive && value.some((v: number) => !(v > 0))) throw new PreprocessingError(`${what} must be positive, got [${value.join(', ')}]`);
  return value as Triple;
}

function metaTriple(model: string, meta: Record<string, string>, key: string, positive: boolean): Triple | undefined {
  const text = meta[key];
  if (text === undefined) return undefined;
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch { parsed = null; }
  return checkTriple(parsed, `${model}: metadata ${key} = ${text}:`, positive);
}

function metaPositiveInt(model: string, meta: Record<string, string>, key: string): number | undefined {
  const text = meta[key];
  if (text === undefined) return undefined;
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < 1) throw new PreprocessingError(`${model}: metadata ${key} = '${text}' is not a positive whole number`);
  return n;
}

function metaBoolean(model: string, meta: Record<string, string>, key: string): boolean | undefined {
  const text = meta[key];
  if (text === undefined) return undefined;
  if (text !== 'true' && text !== 'false') throw new PreprocessingError(`${model}: metadata ${key} = '${text}', expected true or false`);
  return text === 'true';
}

/** Resolves how to feed `graph` (named `model` in messages); throws PreprocessingError when it cannot be used. */
export function resolvePreprocessing(
  model: string, graph: GraphDescription, flags: PreprocessingFlags = {}, defaults: PreprocessingFlags = {},
): ResolvedPreprocessing {
  const meta = graph.metadata;
  const assumed: string[] = [];
  const inputNames = graph.inputs.map((i) => i.name);
  const outputNames = graph.outputs.map((o) => o.name);

  const inputName = flags.inputName ?? meta[SKD_KEYS.input] ?? (inputNames.length === 1 ? inputNames[0]! : IMAGES_INPUT);
  const input = graph.inputs.find((i) => i.name === inputName);
  if (!input) throw new PreprocessingError(`${model} has no input '${inputName}'; its inputs are: ${inputNames.join(', ') || 'none'}`);
  const outputName = flags.outputName ?? (outputNames.includes(FEATURES_OUTPUT) ? FEATURES_OUTPUT : outputNames.length === 1 ? outputNames[0]! : FEATURES_OUTPUT);
  if (!outputNames.includes(outputName)) {
    throw new PreprocessingError(`${model} has no output '${outputName}'; its outputs are: ${outputNames.join(', ') || 'none'} (choose one with --output)`);
  }
  if (input.elemType != null && input.elemType !== FLOAT) {
    throw new PreprocessingError(`${model}: input '${inputName}' takes ${ELEMENT_TYPES[input.elemType] ?? `element type ${input.elemType}`}, expected float32 images`);
  }

  const shape = input.shape ?? [];
  if (shape.length !== 0 && shape.length !== 4) throw new PreprocessingError(`${model}: input '${inputName}' has shape [${shape.join(', ')}], expected a 4-d image batch`);
  const shapeLayout: Layout | undefined = shape.length === 4 ? (shape[1] === 3 ? 'nchw' : shape[3] === 3 ? 'nhwc' : undefined) : undefined;
  const metaLayout = meta[SKD_KEYS.layout];
  if (metaLayout !== undefined && !LAYOUTS.includes(metaLayout as Layout)) {
    throw new PreprocessingError(`${model}: metadata ${SKD_KEYS.layout} = '${metaLayout}', expected nchw or nhwc`);
  }
  let layout = flags.layout ?? (metaLayout as Layout | undefined);
  if (!layout && shapeLayout) { layout = shapeLayout; assumed.push(`layout ${layout} (from the input shape)`); }
  if (!layout && defaults.layout) { layout = defaults.layout; assumed.push(`layout ${layout}`); }
  if (!layout) throw new PreprocessingError(`${model}: cannot tell the input layout (no ${SKD_KEYS.layout} metadata); pass --layout nchw or nhwc`);
  if (!LAYOUTS.includes(layout)) throw new PreprocessingError(`layout must be nchw or nhwc, got '${String(layout)}'`);

  if (shape.length === 4) {
    const channels = layout === 'nchw' ? shape[1] : shape[3];
    if (typeof channels === 'number' && channels !== 3) {
      throw new PreprocessingError(`${model}: input '${inputName}' has shape [${shape.join(', ')}], which is not ${layout} with 3 channels (check --layout)`);
    }
  }
  const spatial = shape.length === 4 ? (layout === 'nchw' ? [shape[2], shape[3]] : [shape[1], shape[2]]) : [];
  const shapeSize = typeof spatial[0] === 'number' && spatial[0] === spatial[1] ? spatial[0] : undefined;
  let size = flags.size ?? metaPositiveInt(model, meta, SKD_KEYS.imageSize);
  if (size === undefined && shapeSize !== undefined) { size = shapeSize; assumed.push(`image size ${size} (from the input shape)`); }
  if (size === undefined && defaults.size !== undefined) { size = defaults.size; assumed.push(`image size ${size}`); }
  if (size === undefined) throw new PreprocessingError(`${model}: cannot tell the input image size (no ${SKD_KEYS.imageSize} metadata); pass --size`);
  if (!Number.isInteger(size) || size < 1) throw new PreprocessingError(`image size must be a positive whole number, got ${size}`);
  for (const s of spatial) {
    if (typeof s === 'number' && s !== size) throw new PreprocessingError(`${model}: input '${inputName}' has shape [${shape.join(', ')}] but the image size is ${size}`);
  }

  const channelOrder = meta[SKD_KEYS.channelOrder] ?? 'rgb';
  if (channelOrder !== 'rgb') throw new PreprocessingError(`${model}: metadata ${SKD_KEYS.channelOrder} = '${channelOrder}' is not supported (expected rgb)`);

  const metaInGraph = metaBoolean(model, meta, SKD_KEYS.normalizationInGraph) ?? (meta[SKD_KEYS.valueRange] === '0-1' ? true : undefined);
  const normalizationInGraph = flags.normalizationInGraph ?? metaInGraph ?? defaults.normalizationInGraph ?? false;
  let mean = flags.mean !== undefined ? checkTriple(flags.mean, 'mean', false) : metaTriple(model, meta, SKD_KEYS.mean, false);
  let std = flags.std !== undefined ? checkTriple(flags.std, 'std', true) : metaTriple(model, meta, SKD_KEYS.std, true);
  if (!normalizationInGraph) {
    if (mean === undefined && defaults.mean) { mean = checkTriple(defaults.mean, 'mean', false); assumed.push('mean of the dataset'); }
    if (std === undefined && defaults.std) { std = checkTriple(defaults.std, 'std', true); assumed.push('std of the dataset'); }
    if (!mean || !std) throw new PreprocessingError(`${model}: no normalisation in the metadata (${SKD_KEYS.mean}, ${SKD_KEYS.std}); pass --mean and --std`);
  }

  const out = graph.outputs.find((o) => o.name === outputName)!;
  const lastDim = out.shape && out.shape.length === 2 && typeof out.shape[1] === 'number' ? out.shape[1] : null;
  const featureDim = (outputName === FEATURES_OUTPUT ? metaPositiveInt(model, meta, SKD_KEYS.featureDim) : undefined) ?? lastDim;
  return {
    preprocessing: {
      layout, size, channelOrder: 'rgb', mean: mean ?? [0, 0, 0], std: std ?? [1, 1, 1], normalizationInGraph, inputName, outputName,
    },
    featureDim,
    arch: meta[SKD_KEYS.arch] ?? null,
    assumed,
  };
}

/** The normalisation to apply to pixels / 255 before feeding: identity when the graph normalises itself. */
export function inputNormalization(p: Preprocessing): { mean: Triple; std: Triple } {
  return p.normalizationInGraph ? { mean: [0, 0, 0], std: [1, 1, 1] } : { mean: p.mean, std: p.std };
}
