/**
 * The ONNX Runtime training engine: one session runs the step graph (step-graph.ts: forward, loss, reverse
 * pass), SGD updates Float32Arrays in PyTorch layout (sgd.ts), and for Gen-1 a second session runs the
 * frozen teacher (the exporter's evaluation graph). Masks come from models/masks.ts, the seeded generator
 * the TensorFlow.js engine uses too, so both engines draw the same dropout and DropBlock masks; this engine
 * does not load TensorFlow.js.
 *
 * Weights, momentum and running statistics live in JavaScript memory between steps and are handed to the
 * session as input tensors without a copy on CPU. On CUDA or WebGPU they are copied to the device for each
 * step: onnxruntime-node 1.30 has no IO binding, and a session output kept on the device
 * (preferredOutputLocation) cannot be fed back as the next step's input in Node.
 *
 * A batch whose step would not fit in memory is split into micro-batches whose gradients are averaged before
 * the one SGD update (micro-batch.ts says when, and what changes: batch-norm statistics per micro-batch).
 */
import * as ort from 'onnxruntime-node';
import { buildOnnxGraph } from '../../export/graph.js';
import { trainingMask } from '../../models/masks.js';
import { batchedFeatureSource, type FeatureSource } from '../../infer/evaluate.js';
import { specParameters, type ModelSpec, type NamedWeights } from '../../models/spec.js';
import { encodeOnnxModel } from '../../proto/codec.js';
import { countCorrect, NonFiniteLossError, type EngineSetup, type ModelView, NonFiniteTeacherError, type StepResult, type TrainDevice, type TrainingEngine } from '../engine.js';
import { rotationLabels } from '../losses.js';
import { onDevice, type Provider } from './device.js';
import { nhwcToNchw, rotatedBatch } from './rotate.js';
import { sgdUpdate } from './sgd.js';
import { blockRows, resolveMicroBatch, STEP_MEMORY_FACTOR, usableBytes } from './micro-batch.js';
import type { ConvAlgorithm } from './convolution.js';
import { buildStepGraph, type StepGraph } from './step-graph.js';
import { TRAIN_OPSET } from './graph-builder.js';

export interface OrtEngineOptions extends EngineSetup {
  device?: TrainDevice;
  convolution?: ConvAlgorithm;
  threads?: number;
  /** Receives the engine's notes (a device fallback, a split batch); default stderr. */
  log?: (line: string) => void;
}

/** The memory estimate behind the micro-batch choice (micro-batch.ts), in bytes. */
export interface StepMemory {
  /** Estimated peak of one micro-batch's step beyond what the process held before it. */
  estimatedBytes: number;
  /** The same for the whole batch in one step. */
  wholeBatchBytes: number;
  /** What the step could use when the engine was built (the margin applied). */
  availableBytes: number;
}

function copyWeights(w: NamedWeights): NamedWeights {
  return new Map([...w].map(([k, v]) => [k, { data: Float32Array.from(v.data), shape: [...v.shape] }]));
}

export class OrtEngine implements TrainingEngine {
  readonly name = 'ort' as const;
  readonly spec: ModelSpec;
  readonly dropoutSeed: number;
  dropBlockCalls: number;
  readonly provider: Provider;
  readonly convolution: ConvAlgorithm;
  private readonly weights: NamedWeights;
  private readonly buffers = new Map<string, Float32Array>();

  private constructor(
    private readonly opts: OrtEngineOptions, private readonly graph: StepGraph,
    private readonly session: ort.InferenceSession, private readonly teacher: ort.InferenceSession | undefined, provider: Provider,
    private readonly sessionOptions: ort.InferenceSession.SessionOptions,
    readonly microBatch: number, readonly memory: StepMemory,
  ) {
    this.spec = opts.spec;
    this.dropoutSeed = opts.dropoutSeed;
    this.dropBlockCalls = opts.dropBlockCalls ?? 0;
    this.provider = provider;
    this.convolution = opts.convolution ?? 'winograd';
    this.weights = copyWeights(opts.weights);
    for (const p of specParameters(opts.spec)) {
      if (p.kind !== 'weight' && p.kind !== 'bias') continue;
      const saved = opts.momentum?.get(p.name);
      this.buffers.set(p.name, saved ? Float32Array.from(saved.data) : new Float32Array(p.shape.reduce((a, b) => a * b, 1)));
    }
  }

  static async create(opts: OrtEngineOptions): Promise<OrtEngine> {
    const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
    // The whole batch's graph gives the memory estimate, and is the step graph unless the batch is split.
    const wholeBatch = buildStepGraph(opts.spec, opts.batchSize, opts.loss, opts.convolution);
    const bytesPerImage = (STEP_MEMORY_FACTOR * wholeBatch.activationBytes) / opts.batchSize;
    const available = usableBytes();
    const choice = resolveMicroBatch(opts.microBatch ?? 'auto', opts.batchSize, bytesPerImage, available);
    if (choice.note) log(choice.note);
    const graph = choice.size === opts.batchSize ? wholeBatch : buildStepGraph(opts.spec, choice.size, opts.loss, opts.convolution);
    const stepBytes = encodeOnnxModel(graph.model);
    const teacherBytes = opts.teacher ? evalGraph(opts.spec, opts.teacher, 'logits', 'nchw') : undefined;
    const { value, provider } = await onDevice(opts.device ?? 'auto', opts.threads, log, async (sessionOpts) => {
      const step = await ort.InferenceSession.create(stepBytes, sessionOpts);
      const teacher = teacherBytes ? await ort.InferenceSession.create(teacherBytes, sessionOpts) : undefined;
      return { step, teacher, sessionOpts };
    });
    const memory = { estimatedBytes: bytesPerImage * choice.size, wholeBatchBytes: bytesPerImage * opts.batchSize, availableBytes: available };
    return new OrtEngine(opts, graph, value.step, value.teacher, provider, value.sessionOpts, choice.size, memory);
  }

  /**
   * One optimiser step: the masks are drawn for the whole batch (as an unsplit step draws them), each
   * micro-batch runs the step graph on its images and its rows of the masks, the gradients are averaged,
   * and SGD runs once. Running statistics pass from one micro-batch to the next and, like the DropBlock
   * count, are kept only when every micro-batch's loss is finite.
   */
  async step(pixels: Float32Array, labels: Int32Array, lr: number): Promise<StepResult> {
    const { spec, graph } = this;
    const b = labels.length;
    const s = spec.imageSize;
    const c = spec.inputChannels;
    if (b !== this.opts.batchSize) throw new Error(`the step graph is built for batches of ${this.opts.batchSize}, got ${b}`);
    const m = this.microBatch;
    const k = b / m;
    const x = nhwcToNchw(pixels, b, s, s, c);
    const gen0 = this.opts.loss.kind === 'gen0';
    const turns = gen0 ? [0, 1, 2, 3] as const : [0, 2] as const;
    const classes = spec.numClasses;
    let teacherLogits: Float32Array | undefined;
    if (!gen0) {
      const out = await this.teacher!.run({ [spec.input]: new ort.Tensor('float32', x, [b, c, s, s]) });
      teacherLogits = out.logits.data as Float32Array;
      if (!teacherLogits.every(Number.isFinite)) throw new NonFiniteTeacherError();
    }
    const calls = this.dropBlockCalls + 1;
    const masks = graph.masks.map((mk) => {
      const shape = [turns.length * b, ...mk.shape.slice(1)];
      return { name: mk.name, shape: mk.shape, rowSize: mk.shape[1] * mk.shape[2] * mk.shape[3], data: stepMask(mk.node, mk.index, shape, this.dropoutSeed, calls) };
    });
    const running = new Map(graph.running.map((r) => [r.name, this.weights.get(r.name)!.data]));
    const grads = new Map<string, Float32Array>();
    const parts: Record<string, number> = {};
    let lossSum = 0;
    const result: StepResult = { loss: 0, parts, correct: 0 };
    if (gen0) Object.assign(result, { rotCorrect: 0, rotRows: turns.length * b });
    const image = c * s * s;
    for (let j = 0; j < k; j++) {
      const feeds: Record<string, ort.Tensor> = {};
      const microLabels = labels.subarray(j * m, (j + 1) * m);
      feeds[spec.input] = new ort.Tensor('float32', rotatedBatch(x.subarray(j * m * image, (j + 1) * m * image), m, c, s, turns), [graph.rows, c, s, s]);
      if (gen0) {
        const t = new Float32Array(graph.rows * classes);
        for (let r = 0; r < graph.rows; r++) t[r * classes + microLabels[r % m]] = 1;
        feeds.targets = new ort.Tensor('float32', t, [graph.rows, classes]);
      } else {
        feeds.teacher_logits = new ort.Tensor('float32', teacherLogits!.subarray(j * m * classes, (j + 1) * m * classes), [m, classes]);
      }
      for (const p of graph.params) feeds[p.name] = new ort.Tensor('float32', this.weights.get(p.name)!.data, p.shape);
      for (const r of graph.running) feeds[r.name] = new ort.Tensor('float32', running.get(r.name)!, r.shape);
      for (const mk of masks) feeds[mk.name] = new ort.Tensor('float32', blockRows(mk.data, mk.rowSize, b, turns.length, j * m, m), mk.shape);
      const out = await this.session.run(feeds);
      const loss = (out.loss.data as Float32Array)[0];
      if (!Number.isFinite(loss)) throw new NonFiniteLossError(loss);
      lossSum += loss;
      for (const r of graph.running) running.set(r.name, out[`new:${r.name}`].data as Float32Array);
      for (const name of graph.gradients) {
        const g = out[`grad:${name}`].data as Float32Array;
        const sum = grads.get(name);
        if (!sum) grads.set(name, k === 1 ? g : Float32Array.from(g));
        else for (let i = 0; i < g.length; i++) sum[i] += g[i];
      }
      for (const p of graph.parts.slice(1)) parts[p] = (parts[p] ?? 0) + (out[p].data as Float32Array)[0];
      result.correct += countCorrect(out.logits.data as Float32Array, classes, microLabels);
      if (gen0) result.rotCorrect! += countCorrect(out.rot_logits.data as Float32Array, 4, rotationLabels(m));
    }
    this.dropBlockCalls = calls;
    for (const r of graph.running) this.weights.get(r.name)!.data.set(running.get(r.name)!);
    for (const [name, sum] of grads) {
      if (k > 1) for (let i = 0; i < sum.length; i++) sum[i] /= k;
      sgdUpdate(this.weights.get(name)!.data, sum, this.buffers.get(name)!, lr, this.opts.sgd);
    }
    result.loss = lossSum / k;
    for (const p of Object.keys(parts)) parts[p] /= k;
    return result;
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
    const c = this.spec.inputChannels;
    const source = batchedFeatureSource(size, c, this.spec.featureDim, undefined, async (images, m) => {
      const result = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', images, [m, size, size, c]) });
      return result.features.data as Float32Array;
    });
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

/** The NHWC keep mask [n, h, w, c] of a node, as the TensorFlow.js engine draws it (all ones when it drops nothing). */
export function stepMask(node: StepGraph['masks'][number]['node'], index: number, shape: number[], dropoutSeed: number, calls: number): Float32Array {
  return trainingMask(node, index, shape, dropoutSeed, calls) ?? new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(1);
}

/** The exporter's graph of a network in evaluation mode (batch-norm folded), with one output. */
export function evalGraph(spec: ModelSpec, weights: NamedWeights, output: 'logits' | 'features', layout: 'nchw' | 'nhwc'): Uint8Array {
  const graph = buildOnnxGraph(spec, weights, { outputs: [output], layout });
  return encodeOnnxModel({ irVersion: 8, opsetImport: [{ domain: '', version: TRAIN_OPSET }], producerName: 'skd', graph });
}
