/**
 * The interface between the engine-neutral training loop (loop.ts) and the two engines that run the steps:
 * ONNX Runtime graphs that skd builds (train/ort/) and TensorFlow.js (tfjs-engine.ts). Weights cross it in
 * PyTorch layout (models/spec.ts), so checkpoints are the same whichever engine wrote them.
 */
import type { ConvAlgorithm } from './ort/convolution.js';
import type { NamedWeights, ModelSpec } from '../models/spec.js';
import type { SgdOptions } from './ort/sgd.js';
import type { StepLoss } from './ort/step-graph.js';
import type { FeatureSource } from '../infer/evaluate.js';

export type EngineName = 'ort' | 'tfjs';
export const ENGINE_NAMES: readonly EngineName[] = ['ort', 'tfjs'];

/** What one optimiser step reports. */
export interface StepResult {
  loss: number;
  parts: Record<string, number>;
  /** Correct top-1 predictions on the unrotated rows. */
  correct: number;
  /** Gen-0: correct rotation predictions over all rotated rows, and how many rows. */
  rotCorrect?: number;
  rotRows?: number;
}

/** Thrown by a step whose loss is NaN or infinite, before the update is applied. */
export class NonFiniteLossError extends Error {
  constructor(readonly loss: number) {
    super(`loss is ${loss}`);
  }
}

/** Thrown by a Gen-1 step when the teacher's logits are not all finite (the student is not at fault). */
export class NonFiniteTeacherError extends Error {
  constructor() {
    super('the teacher\'s outputs are non-finite');
  }
}

/** A network's description and current weights. */
export interface ModelView {
  readonly spec: ModelSpec;
  getWeights(): NamedWeights;
}

/** One network being trained, with its optimiser state. */
export interface TrainingEngine {
  readonly name: EngineName;
  readonly spec: ModelSpec;
  /** Seed of the dropout/DropBlock masks. */
  readonly dropoutSeed: number;
  /** Training forward passes so far (drives the DropBlock schedule and the mask seeds). */
  readonly dropBlockCalls: number;
  /** Images per micro-batch of a step (the batch size when steps are not split; train/ort/micro-batch.ts). */
  readonly microBatch: number;
  /** One optimiser step on a normalised, augmented NHWC batch [B, H, W, C] with labels [B] at learning rate lr. */
  step(pixels: Float32Array, labels: Int32Array, lr: number): Promise<StepResult>;
  /** Every parameter and running statistic (copies). */
  getWeights(): NamedWeights;
  /** The SGD momentum buffers of the trainable parameters (copies). */
  momentum(): NamedWeights;
  /** The networks as the onStart hook shows them: the student (live) and, in Gen-1, the teacher. */
  models(): { model: ModelView; teacher?: ModelView };
  /**
   * Runs `fn` with the network's current weights in evaluation mode as the evaluator's feature source
   * (normalised NHWC images of `size` pixels -> features), for validation.
   */
  withFeatureSource<T>(size: number, fn: (source: FeatureSource) => Promise<T>): Promise<T>;
  dispose(): Promise<void>;
}

/** What both engines are built from. */
export interface EngineSetup {
  spec: ModelSpec;
  weights: NamedWeights;
  /** Unrotated images per step. */
  batchSize: number;
  loss: StepLoss;
  sgd: SgdOptions;
  dropoutSeed: number;
  dropBlockCalls?: number;
  momentum?: NamedWeights;
  /** Gen-1: the frozen teacher (same spec). */
  teacher?: NamedWeights;
  /**
   * Images per micro-batch (a divisor of batchSize): gradients are accumulated over batchSize / microBatch
   * sub-steps before one SGD update. 'auto' (default): the whole batch unless its step would not fit in memory.
   * The ONNX Runtime engine only; the tfjs engine steps whole batches.
   */
  microBatch?: number | 'auto';
}

/** How an engine is asked for. */
export interface EngineOptions {
  engine?: EngineName;
  /** ONNX Runtime execution provider: auto (CUDA when installed, else CPU), cpu, webgpu or cuda. */
  device?: TrainDevice;
  /**
   * The ONNX Runtime engine's 3x3 convolutions: 'winograd' (default; within about 1e-5 of a direct
   * convolution) or 'direct' (a direct convolution's rounding, slower). The tfjs engine convolves directly.
   */
  convolution?: ConvAlgorithm;
  /** Intra-op threads of ONNX Runtime (default: one per core). */
  threads?: number;
  /** Receives the one line saying which engine and device run. */
  log?: (line: string) => void;
}

export type TrainDevice = 'auto' | 'cpu' | 'webgpu' | 'cuda';
export const TRAIN_DEVICES: readonly TrainDevice[] = ['auto', 'cpu', 'webgpu', 'cuda'];

/** The engine a run uses when none is named. */
export const DEFAULT_ENGINE: EngineName = 'ort';

/** Counts rows among the first labels.length rows of logits [rows, classes] whose argmax equals the label. */
export function countCorrect(logits: Float32Array, classes: number, labels: ArrayLike<number>): number {
  let n = 0;
  for (let r = 0; r < labels.length; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[r * classes + c] > logits[r * classes + best]) best = c;
    if (best === labels[r]) n++;
  }
  return n;
}
