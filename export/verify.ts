/**
 * Fidelity check of an exported graph: the same inputs go through the TensorFlow.js model (eval mode) and
 * through onnxruntime-node running the ONNX bytes, and each output is compared.
 *
 * Inputs are images as pixels / 255 (NHWC, values in [0, 1]): seeded uniform random images, plus real
 * images when given. TensorFlow.js receives them normalised with the file's recorded mean/std; the ONNX
 * graph receives what its own metadata says it takes (layout, normalisation in the graph or not), so the
 * check also covers the metadata.
 *
 * Per output, with a = ONNX Runtime and b = TensorFlow.js over all inputs and elements:
 *   max_abs = max |a - b|,   max_rel = max_abs / max |b|   (max_abs itself when b is all zeros)
 * The export passes when max_rel <= tolerance (default 1e-4) for every output. Relative to the output's
 * largest magnitude rather than elementwise, so that elements near zero don't turn rounding into failures.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { UserError } from '../data/errors.js';
import { Rng } from '../data/rng.js';
import { normalizeFloats } from '../data/augment.js';
import type { FloatTensor } from '../data/types.js';
import { PreprocessingError, SKD_KEYS, resolvePreprocessing, type Preprocessing } from '../models/preprocessing.js';
import { readOnnxInfo } from '../infer/onnx-metadata.js';
import { nhwcToNchw } from '../infer/layout.js';
import type { ModelSpec, NamedWeights } from '../models/spec.js';
import { TfModel } from '../models/tfjs.js';
import { selectBackend } from '../models/tfjs-backend.js';
import { OUTPUT_NAMES, type OutputName } from './graph.js';

export const DEFAULT_TOLERANCE = 1e-4;

export interface VerifyOptions {
  spec: ModelSpec;
  weights: NamedWeights;
  onnx: Uint8Array;
  /** Real images, NHWC pixels / 255, at the model's image size. */
  images?: FloatTensor;
  /** Seeded random images to add (default 8). */
  randomImages?: number;
  seed?: number;
  /** Largest allowed max_rel (default 1e-4). */
  tolerance?: number;
  /** TensorFlow.js backend: the active one by default, else wasm. */
  backend?: 'cpu' | 'wasm';
  /** Images per forward pass (default 16). */
  batchSize?: number;
  /** Throw UserError when an output exceeds the tolerance (default true). */
  throwOnFailure?: boolean;
}

export interface OutputDifference {
  output: OutputName;
  maxAbs: number;
  maxRel: number;
  /** max |b|, the denominator of maxRel. */
  scale: number;
}

export interface VerifyReport {
  passed: boolean;
  tolerance: number;
  randomImages: number;
  realImages: number;
  backend: string;
  outputs: OutputDifference[];
  /** Largest maxRel over the outputs. */
  maxRel: number;
}

const TF_OUTPUT: Record<OutputName, 'features' | 'logits' | 'rotLogits'> = { features: 'features', logits: 'logits', rot_logits: 'rotLogits' };

async function ensureBackend(choice: 'cpu' | 'wasm' | undefined): Promise<string> {
  const quiet = { log: () => undefined };
  if (choice) await selectBackend(choice, quiet);
  else if (!tf.engine().backendName) await selectBackend('wasm', quiet);
  return tf.getBackend();
}

export async function verifyExport(opts: VerifyOptions): Promise<VerifyReport> {
  const { spec } = opts;
  const tolerance = opts.tolerance ?? DEFAULT_TOLERANCE;
  const info = readOnnxInfo(opts.onnx);
  const outputs = info.outputs.map((o) => o.name).filter((n): n is OutputName => (OUTPUT_NAMES as readonly string[]).includes(n));
  if (outputs.length === 0) throw new UserError('the ONNX file has none of the outputs features, logits, rot_logits');
  // TensorFlow.js always takes normalised images, so the recorded mean/std are needed even when the graph normalises.
  if (info.metadata[SKD_KEYS.mean] === undefined || info.metadata[SKD_KEYS.std] === undefined) {
    throw new UserError(`the ONNX file lacks ${SKD_KEYS.mean} / ${SKD_KEYS.std} metadata`);
  }
  let p: Preprocessing;
  try {
    p = resolvePreprocessing('the exported ONNX file', info, { outputName: outputs[0] }).preprocessing;
  } catch (err) {
    if (err instanceof PreprocessingError) throw new UserError(err.message);
    throw err;
  }
  const { layout, normalizationInGraph: baked } = p;
  const norm = { mean: p.mean, std: p.std };
  const size = spec.imageSize;
  const c = spec.inputChannels;
  const perImage = size * size * c;

  const randomCount = opts.randomImages ?? 8;
  const rng = new Rng(opts.seed ?? 0);
  const random = new Float32Array(randomCount * perImage);
  for (let i = 0; i < random.length; i++) random[i] = rng.random();
  let realCount = 0;
  let pixels = random;
  if (opts.images) {
    const [n, h, w, ch] = opts.images.shape;
    if (opts.images.shape.length !== 4 || h !== size || w !== size || ch !== c) {
      throw new UserError(`verification images have shape [${opts.images.shape.join(', ')}], expected [n, ${size}, ${size}, ${c}]`);
    }
    realCount = n;
    pixels = new Float32Array((randomCount + n) * perImage);
    pixels.set(random);
    pixels.set(opts.images.data.subarray(0, n * perImage), random.length);
  }
  const total = randomCount + realCount;
  if (total === 0) throw new UserError('verification needs at least one image');

  const backend = await ensureBackend(opts.backend);
  const model = new TfModel(spec, opts.weights);
  const session = await ort.InferenceSession.create(opts.onnx, { graphOptimizationLevel: 'all' });
  const diffs = new Map<OutputName, { maxAbs: number; scale: number }>(outputs.map((o) => [o, { maxAbs: 0, scale: 0 }]));
  const batchSize = opts.batchSize ?? 16;
  try {
    for (let start = 0; start < total; start += batchSize) {
      const n = Math.min(batchSize, total - start);
      const batch = pixels.subarray(start * perImage, (start + n) * perImage);
      const normalized = normalizeFloats(batch, c, norm);
      const expected = tf.tidy(() => {
        const out = model.forward(tf.tensor4d(normalized, [n, size, size, c]), false);
        return outputs.map((o) => out[TF_OUTPUT[o]].dataSync() as Float32Array);
      });
      const fed = baked ? Float32Array.from(batch) : normalized;
      let onnxInput = fed;
      if (layout === 'nchw') nhwcToNchw(fed, (onnxInput = new Float32Array(fed.length)), n, size, size, c);
      const dims = layout === 'nchw' ? [n, c, size, size] : [n, size, size, c];
      const result = await session.run({ [p.inputName]: new ort.Tensor('float32', onnxInput, dims) });
      outputs.forEach((o, k) => {
        const a = result[o].data as Float32Array;
        const b = expected[k];
        if (a.length !== b.length) throw new Error(`output ${o}: ONNX Runtime gave ${a.length} values, TensorFlow.js ${b.length}`);
        const d = diffs.get(o)!;
        for (let i = 0; i < a.length; i++) {
          d.maxAbs = Math.max(d.maxAbs, Math.abs(a[i] - b[i]));
          d.scale = Math.max(d.scale, Math.abs(b[i]));
        }
      });
    }
  } finally {
    model.dispose();
    await session.release();
  }
  const report: OutputDifference[] = outputs.map((o) => {
    const d = diffs.get(o)!;
    const maxRel = d.scale > 0 ? d.maxAbs / d.scale : d.maxAbs;
    return { output: o, maxAbs: d.maxAbs, maxRel, scale: d.scale };
  });
  const maxRel = Math.max(...report.map((r) => r.maxRel));
  // NaN never passes.
  const passed = report.every((r) => r.maxRel <= tolerance);
  const result: VerifyReport = { passed, tolerance, randomImages: randomCount, realImages: realCount, backend, outputs: report, maxRel };
  if (!passed && (opts.throwOnFailure ?? true)) {
    throw new UserError(`export verification failed: ${formatVerifyReport(result)}`);
  }
  return result;
}

/** One line per run: each output's largest absolute and relative difference. */
export function formatVerifyReport(r: VerifyReport): string {
  const parts = r.outputs.map((o) => `${o.output} max abs ${o.maxAbs.toExponential(2)}, max rel ${o.maxRel.toExponential(2)}`);
  return `${r.randomImages} random + ${r.realImages} real images, TensorFlow.js (${r.backend}) vs ONNX Runtime: ${parts.join('; ')} (tolerance ${r.tolerance} relative)`;
}
