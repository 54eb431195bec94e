/**
 * Gen-0: supervised classification with rotation self-supervision. Each batch x becomes
 * X = [x, x90, x180, x270] (rotated after normalisation); the network runs in training mode on X and the
 * loss is CE on all 4B rows plus gamma * BCE on the rotation logits (train/losses.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initWeights } from '../models/init.js';
import { TfModel } from '../models/tfjs.js';
import { resolveConfig, specFor, type TrainOptions } from './config.js';
import { registerGradients } from './gradients.js';
import { gen0Loss, rotationLabels } from './losses.js';
import { NonFiniteLossError, runEpochs, validate, type StepFn, type TrainResult } from './loop.js';
import type { TrainHooks } from './progress.js';
import { withAllRotations } from './rotate.js';
import { checkpointPathFor, loadTrainData, prepareOutDir, startingPoint } from './setup.js';
import { Sgd } from './sgd.js';

export interface RunOptions {
  /** Continue the checkpoint in the output folder. */
  resume?: boolean;
}

/** Counts rows whose argmax equals the label. */
export function countCorrect(logits: tf.Tensor2D, labels: Int32Array): number {
  const pred = tf.tidy(() => tf.argMax(logits, 1).dataSync());
  let n = 0;
  for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) n++;
  return n;
}

/** One Gen-0 optimiser step (exported for tests and benchmarks). */
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
    const dispose = (): void => { tf.dispose([value, y, ...kept]); tf.dispose(grads); };
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
      dispose();
    }
  };
}

/** Trains Gen-0 from scratch (or resumes it) and returns the per-epoch history. */
export async function trainGen0(options: TrainOptions & RunOptions, hooks: TrainHooks = {}): Promise<TrainResult> {
  await registerGradients();
  const { config, notes } = resolveConfig(0, options);
  for (const n of notes) hooks.log?.(n);
  await prepareOutDir(config.out);
  const data = await loadTrainData(config);
  const spec = specFor(config, data.train.classNames.length);
  const checkpointPath = checkpointPathFor(config.out, 0);
  const start = await startingPoint({ path: checkpointPath, resume: options.resume ?? false, generation: 0, spec, config, hooks });
  const ckpt = start.checkpoint;
  const model = new TfModel(spec, ckpt ? ckpt.weights : initWeights(spec, config.seed), { dropoutSeed: config.seed });
  model.dropBlockCalls = ckpt?.dropBlockCalls ?? 0;
  const sgd = new Sgd(model.trainableVariables(), { momentum: config.momentum, weightDecay: config.weightDecay });
  try {
    if (ckpt?.optimizer) sgd.restoreMomentum(model, ckpt.optimizer.momentum);
    const args = {
      generation: 0, config, model, sgd, train: data.train, val: data.val, normalization: data.normalization,
      checkpointPath, state: start.state, step: gen0Step(model, sgd, config.gamma), hooks,
    };
    hooks.onStart?.({ generation: 0, model });
    const initialValidation = !ckpt ? await validate(args) : undefined;
    if (initialValidation) hooks.log?.(`gen0 before training: val ${initialValidation.ways}-way ${initialValidation.shots}-shot ${initialValidation.accuracy.toFixed(2)}%`);
    const history = await runEpochs(args);
    return { generation: 0, checkpoint: checkpointPath, config, history, initialValidation };
  } finally {
    sgd.dispose();
    model.dispose();
  }
}
