/**
 * The TensorFlow.js training engine: a TfModel (models/tfjs.ts) differentiated by tf.variableGrads, the
 * SKD losses as tfjs ops (losses.ts) and the tfjs SGD (sgd.ts). It runs on whichever tfjs backend is active
 * (tfjs-node-gpu, tfjs-node, wasm, cpu; models/tfjs-backend.ts) and is the cross-check of the ONNX Runtime engine.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ModelSpec, NamedWeights } from '../models/spec.js';
import { TfModel } from '../models/tfjs.js';
import { NonFiniteLossError, NonFiniteTeacherError, type EngineSetup, type StepResult, type TrainingEngine } from './engine.js';
import { gen0Loss, gen1Loss, rotationLabels } from './losses.js';
import { withAllRotations, withHalfTurn } from './rotate.js';
import { Sgd } from './sgd.js';
import { modelFeatureSource } from './validate.js';
import type { FeatureSource } from '../infer/evaluate.js';

/** One optimiser step on a normalised, augmented batch [B, H, W, C] with labels [B] at learning rate lr. */
export type StepFn = (x: tf.Tensor4D, labels: Int32Array, lr: number) => StepResult;

/** Counts rows whose argmax equals the label. */
export function countCorrect(logits: tf.Tensor2D, labels: Int32Array): number {
  const pred = tf.tidy(() => tf.argMax(logits, 1).dataSync());
  let n = 0;
  for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) n++;
  return n;
}

/** One Gen-0 optimiser step. */
export function gen0Step(model: TfModel, sgd: Sgd, gamma: number): StepFn {
  const variables = model.trainableVariables();
  return (x, labels, lr) => {
    const b = labels.length;
    const yRep = new Int32Array(4 * b);
    for (let k = 0; k < 4; k++) yRep.set(labels, k * b);
    const y = tf.tensor1d(yRep, 'int32');
    let kept: tf.Tensor[] = [];
    const { value, grads } = tf.variableGrads(() => {
      const out = model.forward(withAllRotations(x), true);
      const p = gen0Loss(out.logits, out.rotLogits, y, gamma);
      kept = [tf.keep(p.ce), tf.keep(p.ss), tf.keep(out.logits), tf.keep(out.rotLogits)];
      return p.loss;
    }, variables);
    const [ce, ss, logits, rotLogits] = kept;
    try {
      const loss = value.dataSync()[0];
      if (!Number.isFinite(loss)) throw new NonFiniteLossError(loss);
      sgd.step(grads, lr);
      const unrotated = tf.slice(logits, [0, 0], [b, -1]) as tf.Tensor2D;
      const correct = countCorrect(unrotated, labels);
      unrotated.dispose();
      const rotCorrect = countCorrect(rotLogits as tf.Tensor2D, rotationLabels(b));
      return { loss, parts: { ce: ce.dataSync()[0], ss: ss.dataSync()[0] }, correct, rotCorrect, rotRows: 4 * b };
    } finally {
      tf.dispose([value, y, ...kept]);
      tf.dispose(grads);
    }
  };
}

/** One Gen-1 optimiser step. */
export function gen1Step(teacher: TfModel, student: TfModel, sgd: Sgd, temperature: number, gamma: number): StepFn {
  const variables = student.trainableVariables();
  return (x, labels, lr) => {
    const zTeacher = tf.tidy(() => teacher.forward(x, false).logits);
    if (!(zTeacher.dataSync() as Float32Array).every(Number.isFinite)) {
      zTeacher.dispose();
      throw new NonFiniteTeacherError();
    }
    let kept: tf.Tensor[] = [];
    const { value, grads } = tf.variableGrads(() => {
      const out = student.forward(withHalfTurn(x), true);
      const p = gen1Loss(zTeacher, out.logits, temperature, gamma);
      kept = [tf.keep(p.kd), tf.keep(p.l2), tf.keep(out.logits)];
      return p.loss;
    }, variables);
    const [kd, l2, logits] = kept;
    try {
      const loss = value.dataSync()[0];
      if (!Number.isFinite(loss)) throw new NonFiniteLossError(loss);
      sgd.step(grads, lr);
      const unrotated = tf.slice(logits, [0, 0], [labels.length, -1]) as tf.Tensor2D;
      const correct = countCorrect(unrotated, labels);
      unrotated.dispose();
      return { loss, parts: { kd: kd.dataSync()[0], l2: l2.dataSync()[0] }, correct };
    } finally {
      tf.dispose([value, zTeacher, ...kept]);
      tf.dispose(grads);
    }
  };
}

export class TfjsEngine implements TrainingEngine {
  readonly name = 'tfjs' as const;
  readonly spec: ModelSpec;
  readonly model: TfModel;
  readonly teacherModel?: TfModel;
  private readonly sgd: Sgd;
  private readonly run: StepFn;
  private readonly batchSize: number;

  constructor(opts: EngineSetup) {
    this.spec = opts.spec;
    this.batchSize = opts.batchSize;
    this.model = new TfModel(opts.spec, opts.weights, { dropoutSeed: opts.dropoutSeed });
    this.model.dropBlockCalls = opts.dropBlockCalls ?? 0;
    this.sgd = new Sgd(this.model.trainableVariables(), opts.sgd);
    if (opts.momentum) this.sgd.restoreMomentum(this.model, opts.momentum);
    if (opts.loss.kind === 'gen0') {
      this.run = gen0Step(this.model, this.sgd, opts.loss.gamma);
    } else {
      if (!opts.teacher) throw new Error('a Gen-1 engine needs the teacher\'s weights');
      this.teacherModel = new TfModel(opts.spec, opts.teacher);
      this.run = gen1Step(this.teacherModel, this.model, this.sgd, opts.loss.temperature, opts.loss.gamma);
    }
  }

  get dropoutSeed(): number { return this.model.dropoutSeed; }
  get dropBlockCalls(): number { return this.model.dropBlockCalls; }
  get microBatch(): number { return this.batchSize; }

  async step(pixels: Float32Array, labels: Int32Array, lr: number): Promise<StepResult> {
    const s = this.spec.imageSize;
    const x = tf.tensor4d(pixels, [labels.length, s, s, this.spec.inputChannels]);
    try {
      return this.run(x, labels, lr);
    } finally {
      x.dispose();
    }
  }

  getWeights(): NamedWeights { return this.model.getWeights(); }
  models(): { model: TfModel; teacher?: TfModel } { return { model: this.model, teacher: this.teacherModel }; }
  momentum(): NamedWeights { return this.model.toNamedWeights(this.sgd.momentumBuffers()); }
  withFeatureSource<T>(size: number, fn: (source: FeatureSource) => Promise<T>): Promise<T> { return fn(modelFeatureSource(this.model, size)); }

  async dispose(): Promise<void> {
    this.sgd.dispose();
    this.model.dispose();
    this.teacherModel?.dispose();
  }
}
