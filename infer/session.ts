/**
 * ONNX Runtime feature extraction for any image backbone: the model's metadata_props (written by `skd export`)
 * say how to preprocess; a foreign graph is described by overrides (the command-line flags). Execution provider
 * choice: infer/execution-provider.ts ('auto': CUDA when its provider is installed, else CPU, silently; a provider
 * asked for that cannot start: CPU, said once on stderr).
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { normalizePixels } from '../data/augment.js';
import { UserError } from '../data/errors.js';
import type { Normalization } from '../data/types.js';
import {
  FEATURES_OUTPUT, PreprocessingError, SKD_KEYS, inputNormalization, resolvePreprocessing, type GraphDescription, type Preprocessing,
} from '../models/preprocessing.js';
import { onProvider, type DeviceRequest, type Provider } from './execution-provider.js';
import { nhwcToNchw } from './layout.js';
import { readOnnxInfo } from './onnx-metadata.js';

export type { Preprocessing } from '../models/preprocessing.js';

export type Device = DeviceRequest;
export const DEVICES: readonly Device[] = ['auto', 'cpu', 'cuda', 'webgpu'];

export interface OpenOptions {
  /** Default 'auto'. */
  device?: Device;
  /** intraOpNumThreads; default: one per core (os.availableParallelism()). */
  threads?: number;
  /** Name of the feature output (wins over overrides.outputName). Default 'features', or the only output. */
  output?: string;
  /** Wins over the model's metadata (flags describing a foreign graph). */
  overrides?: Partial<Preprocessing>;
  /** Used only where both the metadata and the overrides are silent (for example a dataset's normalisation). */
  defaults?: Partial<Preprocessing>;
  /** Where the one-line provider fallback notice goes. Default: stderr. */
  log?: (line: string) => void;
  /** The model's bytes, when they are already in memory (a checkpoint exported on the fly); modelPath then only names it. */
  modelBytes?: Uint8Array;
}

/** Images per ONNX Runtime run unless told otherwise: on CPU, small batches keep the activations in cache. */
export const DEFAULT_BATCH_SIZE = 32;

export class FeatureExtractor {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly preprocessing: Preprocessing,
    readonly featureDim: number,
    readonly metadata: Record<string, string>,
    /** The execution provider the session runs on. */
    readonly provider: Provider,
    readonly modelPath: string,
  ) {}

  static async open(modelPath: string, opts: OpenOptions = {}): Promise<FeatureExtractor> {
    const device = opts.device ?? 'auto';
    if (!DEVICES.includes(device)) throw new UserError(`unknown device '${String(device)}': expected ${DEVICES.join(', ')}`);
    if (opts.threads !== undefined && !(Number.isInteger(opts.threads) && opts.threads >= 0)) {
      throw new UserError(`--threads must be a non-negative integer (0 = one per core), got ${opts.threads}`);
    }
    let bytes: Uint8Array;
    try {
      bytes = opts.modelBytes ?? await readFile(modelPath);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new UserError(`model file not found: ${modelPath}`);
      if (code === 'EISDIR') throw new UserError(`${modelPath} is a directory, expected an ONNX file`);
      throw new UserError(`cannot read ${modelPath}: ${(err as Error).message}`);
    }
    let graph: GraphDescription;
    try {
      graph = readOnnxInfo(bytes);
    } catch (err) {
      throw new UserError(`${modelPath} is not an ONNX model (${(err as Error).message})`);
    }
    const { session, provider } = await createSession(modelPath, bytes, device, opts.threads, opts.log);
    try {
      const preprocessing = resolveForSession(modelPath, graph, session, opts);
      const featureDim = await probeFeatureDim(modelPath, session, preprocessing, graph.metadata);
      return new FeatureExtractor(session, preprocessing, featureDim, graph.metadata, provider, modelPath);
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  /** The normalisation to apply to pixels / 255 before feeding (identity when the graph normalises itself). */
  inputNormalization(): Normalization {
    return inputNormalization(this.preprocessing);
  }

  /**
   * Features of `count` images given as normalised float NHWC (size x size x 3 each): count x featureDim, raw
   * (not L2-normalised). Runs batches of `batchSize` (default 32: on CPU, small batches keep the activations in cache).
   */
  async extract(images: Float32Array, count: number, opts: { batchSize?: number } = {}): Promise<Float32Array> {
    const { size, layout, inputName, outputName } = this.preprocessing;
    const imageSize = size * size * 3;
    if (images.length !== count * imageSize) {
      throw new RangeError(`extract: ${images.length} values for ${count} images of ${size}x${size}x3`);
    }
    const batchSize = Math.max(1, Math.floor(opts.batchSize ?? DEFAULT_BATCH_SIZE));
    const D = this.featureDim;
    const out = new Float32Array(count * D);
    const scratch = layout === 'nchw' ? new Float32Array(Math.min(batchSize, count) * imageSize) : null;
    for (let start = 0; start < count; start += batchSize) {
      const b = Math.min(batchSize, count - start);
      const slice = images.subarray(start * imageSize, (start + b) * imageSize);
      let input: ort.Tensor;
      if (scratch) {
        const nchw = scratch.subarray(0, b * imageSize);
        nhwcToNchw(slice, nchw, b, size, size, 3);
        input = new ort.Tensor('float32', nchw, [b, 3, size, size]);
      } else {
        input = new ort.Tensor('float32', slice, [b, size, size, 3]);
      }
      const result = await this.session.run({ [inputName]: input }, [outputName]);
      const value = result[outputName] as ort.Tensor;
      const data = value.data as Float32Array;
      if (data.length !== b * D) throw new Error(`output '${outputName}' gave ${data.length} values for ${b} images, expected ${b * D}`);
      out.set(data, start * D);
      value.dispose();
    }
    return out;
  }

  /** uint8 RGB NHWC pixels at size x size, normalised as the preprocessing says, then extract. */
  async extractPixels(pixels: Uint8Array, count: number, opts: { batchSize?: number } = {}): Promise<Float32Array> {
    const size = this.preprocessing.size;
    if (pixels.length !== count * size * size * 3) {
      throw new RangeError(`extractPixels: ${pixels.length} bytes for ${count} images of ${size}x${size}x3`);
    }
    return this.extract(normalizePixels(pixels, count, this.inputNormalization()), count, opts);
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

async function createSession(
  modelPath: string, bytes: Uint8Array, device: Device, threads: number | undefined, log: ((line: string) => void) | undefined,
): Promise<{ session: ort.InferenceSession; provider: Provider }> {
  ort.env.logLevel = 'fatal';
  // One intra-op thread per core unless told otherwise: onnxruntime-node's own default used about one core here
  // (npm run bench -- onnx: 133 images/s with 1 thread, 280 with 2 at 32x32). Spinning threads only burn the
  // core that the other thread needs between runs, so they are off.
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all', interOpNumThreads: 1, intraOpNumThreads: threads !== undefined && threads > 0 ? threads : availableParallelism(),
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
  const say = log ?? ((line: string) => process.stderr.write(line + '\n'));
  let cpuFailure: unknown;
  try {
    const { value, provider } = await onProvider(device, 'running', say, async (ep) => {
      try {
        return await ort.InferenceSession.create(bytes, { ...base, executionProviders: [ep] });
      } catch (err) {
        if (ep === 'cpu') cpuFailure = err;
        throw err;
      }
    });
    return { session: value, provider };
  } catch (err) {
    if (cpuFailure === undefined) throw err;
    throw new UserError(`cannot load ${modelPath} in onnxruntime: ${firstLine((cpuFailure as Error).message)}`);
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

/** The shared resolver (models/preprocessing.ts) on the file's graph, checked against what the session loaded. */
function resolveForSession(modelPath: string, graph: GraphDescription, session: ort.InferenceSession, opts: OpenOptions): Preprocessing {
  const flags = { ...opts.overrides, ...(opts.output !== undefined ? { outputName: opts.output } : {}) };
  let p: Preprocessing;
  try {
    p = resolvePreprocessing(modelPath, graph, flags, opts.defaults).preprocessing;
  } catch (err) {
    if (err instanceof PreprocessingError) throw new UserError(err.message);
    throw err;
  }
  if (!session.inputNames.includes(p.inputName)) {
    throw new UserError(`${modelPath} has no input '${p.inputName}'; its inputs are: ${session.inputNames.join(', ')}`);
  }
  return p;
}

/** Runs one blank image to learn (and check) the width of the feature output. */
async function probeFeatureDim(modelPath: string, session: ort.InferenceSession, p: Preprocessing, meta: Record<string, string>): Promise<number> {
  const dims = p.layout === 'nchw' ? [1, 3, p.size, p.size] : [1, p.size, p.size, 3];
  let result: ort.InferenceSession.ReturnType;
  try {
    result = await session.run({ [p.inputName]: new ort.Tensor('float32', new Float32Array(3 * p.size * p.size), dims) }, [p.outputName]);
  } catch (err) {
    throw new UserError(`${modelPath} does not run on a ${p.layout} ${p.size}x${p.size} image: ${firstLine((err as Error).message)} (check --layout and --size)`);
  }
  const out = result[p.outputName] as ort.Tensor;
  const shape = out.dims;
  const flat = shape.length === 2 || (shape.length === 4 && shape[2] === 1 && shape[3] === 1);
  if (out.type !== 'float32' || !flat || shape[0] !== 1 || !(shape[1]! > 0)) {
    throw new UserError(`${modelPath}: output '${p.outputName}' is ${out.type} [${shape.join(', ')}] per image; a head needs float32 features [batch, D] (choose another with --output)`);
  }
  const dim = shape[1]!;
  const metaDim = meta[SKD_KEYS.featureDim];
  if (metaDim !== undefined && p.outputName === FEATURES_OUTPUT && Number(metaDim) !== dim) {
    throw new UserError(`${modelPath}: metadata says ${SKD_KEYS.featureDim} = ${metaDim} but output '${p.outputName}' has ${dim} values`);
  }
  out.dispose();
  return dim;
}

