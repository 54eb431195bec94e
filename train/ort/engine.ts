/**
 * The ONNX Runtime training engine: one session runs the step graph (step-graph.ts: forward, loss, reverse
 * pass), SGD updates Float32Arrays in PyTorch layout (sgd.ts), and for Gen-1 a second session runs the
 * frozen teacher (the exporter's evaluation graph). Masks come from the TensorFlow.js engine's seeded
 * generator (models/tfjs-ops.ts trainingMask), so both engines draw the same dropout and DropBlock masks.
 *
 * Weights, momentum and running statistics live in JavaScript memory between steps and are handed to the
 * session as input tensors without a copy on CPU. On CUDA or WebGPU they are copied to the device for each
 * step: onnxruntime-node 1.30 has no IO binding, and a session output kept on the device
 * (preferredOutputLocation) cannot be fed back as the next step's input in Node.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { buildOnnxGraph } from '../../export/graph.js';
import { trainingMask } from '../../models/tfjs-ops.js';
import type { FeatureSource } from '../../infer/evaluate.js';
import { specParameters, type ModelSpec, type NamedWeights } from '../../models/spec.js';
import { encodeOnnxModel } from '../../proto/codec.js';
import { countCorrect, NonFiniteLossError, type EngineSetup, type ModelView, NonFiniteTeacherError, type StepResult, type TrainDevice, type TrainingEngine } from '../engine.js';
import { rotationLabels } from '../losses.js';
import { onDevice, type Provider } from './device.js';
import { nhwcToNchw, rotatedBatch } from './rotate.js';
import { sgdUpdate, type SgdOptions } from './sgd.js';
import { buildStepGraph, type StepGraph, type StepLoss } from './step-graph.js';
import { cpuConvLayout, PLAIN_CONV } from './conv-layout.js';
import { TRAIN_OPSET } from './graph-builder.js';

export interface OrtEngineOptions extends EngineSetup {
  device?: TrainDevice;
  threads?: number;
  log?: (line: string) => void;
}

function copyWeights(w: NamedWeights): NamedWeights {
  return new Map([...w].map(([k, v]) => [k, { data: Float32Array.from(v.data), shape: [...v.shape] }]));
}

/** A TensorFlow.js backend for the masks and validation, when the caller has not chosen one. */
async function ensureTfBackend(): Promise<void> {
  await import('@tensorflow/tfjs-backend-cpu');
  await tf.ready();
}

export class OrtEngine implements TrainingEngine {
  readonly name = 'ort' as const;
  readonly spec: ModelSpec;
  readonly dropoutSeed: number;
  dropBlockCalls: number;
  readonly provider: Provider;
  private readonly weights: NamedWeights;
  private readonly buffers = new Map<string, Float32Array>();

  private constructor(
    private readonly opts: OrtEngineOptions, private readonly graph: StepGraph,
    private readonly session: ort.InferenceSession, private readonly teacher: ort.InferenceSession | undefined, provider: Provider,
    private readonly sessionOptions: ort.InferenceSession.SessionOptions,
  ) {
    this.spec = opts.spec;
    this.dropoutSeed = opts.dropoutSeed;
    this.dropBlockCalls = opts.dropBlockCalls ?? 0;
    this.provider = provider;
    this.weights = copyWeights(opts.weights);
    for (const p of specParameters(opts.spec)) {
      if (p.kind !== 'weight' && p.kind !== 'bias') continue;
      const saved = opts.momentum?.get(p.name);
      this.buffers.set(p.name, saved ? Float32Array.from(saved.data) : new Float32Array(p.shape.reduce((a, b) => a * b, 1)));
    }
  }

  static async create(opts: OrtEngineOptions): Promise<OrtEngine> {
    await ensureTfBackend();
    const teacherBytes = opts.teacher ? evalGraph(opts.spec, opts.teacher, 'logits', 'nchw') : undefined;
    const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
    const { value, provider } = await onDevice(opts.device ?? 'auto', opts.threads, log, async (sessionOpts, provider) => {
      // The blocked-channel convolutions are CPU kernels; other providers get plain Conv.
      const graph = buildStepGraph(opts.spec, opts.batchSize, opts.loss, provider === 'cpu' ? await cpuConvLayout() : PLAIN_CONV);
      const step = await ort.InferenceSession.create(encodeOnnxModel(graph.model), sessionOpts);
      const teacher = teacherBytes ? await ort.InferenceSession.create(teacherBytes, sessionOpts) : undefined;
      return { graph, step, teacher, sessionOpts };
    });
    return new OrtEngine(opts, value.graph, value.step, value.teacher, provider, value.sessionOpts);
  }

  async step(pixels: Float32Array, labels: Int32Array, lr: number): Promise<StepResult> {
    const { spec, graph } = this;
    const b = labels.length;
    const s = spec.imageSize;
    const c = spec.inputChannels;
    if (b !== this.opts.batchSize) throw new Error(`the step graph is built for batches of ${this.opts.batchSize}, got ${b}`);
    const x = nhwcToNchw(pixels, b, s, s, c);
    const gen0 = this.opts.loss.kind === 'gen0';
    const feeds: Record<string, ort.Tensor> = {};
    feeds[spec.input] = new ort.Tensor('float32', rotatedBatch(x, b, c, s, gen0 ? [0, 1, 2, 3] : [0, 2]), [graph.rows, c, s, s]);
    const classes = spec.numClasses;
    if (gen0) {
      const t = new Float32Array(graph.rows * classes);
      for (let r = 0; r < graph.rows; r++) t[r * classes + labels[r % b]] = 1;
      feeds.targets = new ort.Tensor('float32', t, [graph.rows, classes]);
    } else {
      const out = await this.teacher!.run({ [spec.input]: new ort.Tensor('float32', x, [b, c, s, s]) });
      const logits = out.logits.data as Float32Array;
      if (!logits.every(Number.isFinite)) throw new NonFiniteTeacherError();
      feeds.teacher_logits = new ort.Tensor('float32', logits, [b, classes]);
    }
    for (const p of [...graph.params, ...graph.running]) feeds[p.name] = new ort.Tensor('float32', this.weights.get(p.name)!.data, p.shape);
    const calls = this.dropBlockCalls + 1;
    for (const m of graph.masks) feeds[m.name] = new ort.Tensor('float32', this.mask(m.node, m.index, m.shape, calls), m.shape);
    const out = await this.session.run(feeds);
    const loss = (out.loss.data as Float32Array)[0];
    if (!Number.isFinite(loss)) throw new NonFiniteLossError(loss);
    this.dropBlockCalls = calls;
    for (const r of graph.running) this.weights.get(r.name)!.data.set(out[`new:${r.name}`].data as Float32Array);
    for (const name of graph.gradients) {
      sgdUpdate(this.weights.get(name)!.data, out[`grad:${name}`].data as Float32Array, this.buffers.get(name)!, lr, this.opts.sgd);
    }
    const parts: Record<string, number> = {};
    for (const p of graph.parts.slice(1)) parts[p] = (out[p].data as Float32Array)[0];
    const result: StepResult = { loss, parts, correct: countCorrect(out.logits.data as Float32Array, classes, labels) };
    if (gen0) {
      result.rotCorrect = countCorrect(out.rot_logits.data as Float32Array, 4, rotationLabels(b));
      result.rotRows = graph.rows;
    }
    return result;
  }

  /** The NCHW keep mask of a node: drawn in NHWC order as the TensorFlow.js engine draws it, then transposed. */
  private mask(node: StepGraph['masks'][number]['node'], index: number, shape: number[], calls: number): Float32Array {
    const [n, ch, h, w] = shape;
    const nhwc = tf.tidy(() => trainingMask(node, index, [n, h, w, ch], this.dropoutSeed, calls)?.dataSync() as Float32Array | undefined);
    if (!nhwc) return new Float32Array(n * ch * h * w).fill(1);
    const out = new Float32Array(nhwc.length);
    for (let b = 0; b < n; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const from = ((b * h + y) * w + x) * ch;
      for (let k = 0; k < ch; k++) out[((b * ch + k) * h + y) * w + x] = nhwc[from + k];
    }
    return out;
  }

  getWeights(): NamedWeights {
    return copyWeights(this.weights);
  }

  models(): { model: ModelView; teacher?: ModelView } {
    const teacher = this.opts.teacher;
    return { model: this, teacher: teacher ? { spec: this.spec, getWeights: () => copyWeights(teacher) } : undefined };
  }

  momentum(): NamedWeights {
    return new Map([...this.buffers].map(([k, v]) => [k, { data: Float32Array.from(v), shape: [...this.weights.get(k)!.shape] }]));
  }

  async withFeatureSource<T>(size: number, fn: (source: FeatureSource) => Promise<T>): Promise<T> {
    const session = await ort.InferenceSession.create(evalGraph(this.spec, this.weights, 'features', 'nhwc'), this.sessionOptions);
    const dim = this.spec.featureDim;
    const pixels = size * size * this.spec.inputChannels;
    const source: FeatureSource = {
      featureDim: dim,
      preprocessing: { size },
      async extract(images, count, opts) {
        const batch = opts?.batchSize ?? count;
        const out = new Float32Array(count * dim);
        for (let start = 0; start < count; start += batch) {
          const m = Math.min(batch, count - start);
          const input = new ort.Tensor('float32', images.subarray(start * pixels, (start + m) * pixels), [m, size, size, pixels / (size * size)]);
          const result = await session.run({ [session.inputNames[0]]: input });
          out.set(result.features.data as Float32Array, start * dim);
        }
        return out;
      },
    };
    try {
      return await fn(source);
    } finally {
      await session.release();
    }
  }

  async dispose(): Promise<void> {
    await this.session.release();
    await this.teacher?.release();
  }
}

/** The exporter's graph of a network in evaluation mode (batch-norm folded), with one output. */
function evalGraph(spec: ModelSpec, weights: NamedWeights, output: 'logits' | 'features', layout: 'nchw' | 'nhwc'): Uint8Array {
  const graph = buildOnnxGraph(spec, weights, { outputs: [output], layout });
  return encodeOnnxModel({ irVersion: 8, opsetImport: [{ domain: '', version: TRAIN_OPSET }], producerName: 'skd', graph });
}
