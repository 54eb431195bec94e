/**
 * The epoch loop both generations share: shuffled drop-last batches from the seeded stream, augmentation,
 * one optimiser step per batch (the generation supplies it), optional few-shot validation, an atomic
 * checkpoint after every epoch, the JSONL log and the progress hooks. A non-finite loss stops the run
 * before the bad update is applied; the checkpoint on disk stays the last good one.
 */
import { augmentBatch } from '../data/augment.js';
import { UserError } from '../data/errors.js';
import { FEW_SHOT_PROTOCOL } from '../data/protocol.js';
import type { Rng } from '../data/rng.js';
import type { ImageSet, Normalization } from '../data/types.js';
import { nonFiniteWeights, type NamedWeights } from '../models/spec.js';
import { writeCheckpoint, type Checkpoint } from './checkpoint.js';
import type { TrainConfig } from './config.js';
import { appendLog, type TrainHooks } from './progress.js';
import { learningRateAt } from './schedule.js';
import { NonFiniteLossError, NonFiniteTeacherError, type StepResult, type TrainingEngine } from './engine.js';
import type { EpochRecord, ValidationRecord } from './types.js';
import { fewShotValidate } from './validate.js';

export type { StepResult } from './engine.js';
export { NonFiniteLossError } from './engine.js';

export interface LoopState {
  /** Completed epochs. */
  epoch: number;
  step: number;
  rng: Rng;
  history: EpochRecord[];
}

export interface TrainResult {
  generation: number;
  /** The checkpoint holding the final weights. */
  checkpoint: string;
  config: TrainConfig;
  history: EpochRecord[];
  /** Few-shot validation of the network before this run's first epoch (fresh runs with validation on). */
  initialValidation?: ValidationRecord;
}

export interface EpochLoopArgs {
  generation: number;
  config: TrainConfig;
  engine: TrainingEngine;
  train: ImageSet;
  val?: ImageSet;
  normalization: Normalization;
  checkpointPath: string;
  state: LoopState;
  hooks: TrainHooks;
}

/** Few-shot validation with the run's settings (default 5-way 1-shot, episode i seeded with i; docs/method.md). */
export async function validate(args: Pick<EpochLoopArgs, 'engine' | 'val' | 'config' | 'normalization'>): Promise<ValidationRecord | undefined> {
  const val = args.val;
  if (!val) return undefined;
  const c = args.config;
  return args.engine.withFeatureSource(val.height, (source) => fewShotValidate(source, val, {
    ways: c.valWays, shots: c.valShots, queries: c.valQueries, episodes: c.valEpisodes, seed: FEW_SHOT_PROTOCOL.seed,
    normalization: args.normalization, augSupportSamples: c.valAugSupportSamples,
  }));
}

/** Writes the loop's current state as a checkpoint; refuses (returns false) when the weights are not finite. */
async function saveCheckpoint(args: EpochLoopArgs, complete: boolean): Promise<boolean> {
  const { engine, config, state } = args;
  const weights = engine.getWeights();
  if (nonFiniteWeights(weights).length > 0) return false;
  const ckpt: Checkpoint = {
    formatVersion: 1,
    spec: engine.spec,
    weights,
    optimizer: {
      kind: 'sgd',
      momentum: engine.momentum(),
      momentumFactor: config.momentum,
      weightDecay: config.weightDecay,
      learningRate: learningRateAt(config.learningRate, config.lrDecayEpochs, Math.max(1, state.epoch)),
    },
    epoch: state.epoch,
    step: state.step,
    rng: state.rng.getState(),
    dropBlockCalls: engine.dropBlockCalls,
    // The micro-batch size the steps used (auto resolved), so that --resume continues with the same one.
    config: { ...config, dropoutSeed: engine.dropoutSeed, microBatch: engine.microBatch },
    generation: args.generation,
    complete,
    history: state.history,
  };
  await writeCheckpoint(args.checkpointPath, ckpt);
  return true;
}

function divergedMessage(args: EpochLoopArgs, epoch: number, stepInEpoch: number, detail: string, advice?: string): string {
  const { state, checkpointPath, generation } = args;
  const kept = state.epoch > 0
    ? `the last good checkpoint, ${checkpointPath} (epoch ${state.epoch}), is kept`
    : 'no checkpoint had been written yet';
  return `training stopped: ${detail} at gen${generation} epoch ${epoch} step ${stepInEpoch}; ${kept}. ${advice ?? `Lower --learning_rate (now ${args.config.learningRate}) and try again.`}`;
}

/** Runs epochs state.epoch + 1 .. config.epochs, mutating state. Returns the full history. */
export async function runEpochs(args: EpochLoopArgs): Promise<EpochRecord[]> {
  const { config, train, state, hooks, generation } = args;
  const batchSize = config.batchSize;
  const fullSteps = Math.floor(train.count / batchSize);
  if (fullSteps < 1) throw new UserError(`the training set has ${train.count} images, fewer than one batch of ${batchSize}; lower --batch_size`);
  const steps = Math.min(fullSteps, config.maxStepsPerEpoch ?? fullSteps);
  const augment = { padding: config.padding, flip: config.flip, jitter: config.jitter, normalization: args.normalization };

  for (let epoch = state.epoch + 1; epoch <= config.epochs; epoch++) {
    const lr = learningRateAt(config.learningRate, config.lrDecayEpochs, epoch);
    const started = performance.now();
    let trainSeconds = 0;
    const order = state.rng.permutation(train.count);
    const sums: Record<string, number> = {};
    let lossSum = 0;
    let correct = 0;
    let rotCorrect = 0;
    let rotRows = 0;
    for (let s = 0; s < steps; s++) {
      const stepStart = performance.now();
      const indices = order.subarray(s * batchSize, (s + 1) * batchSize);
      const labels = Int32Array.from(indices, (i) => train.labels[i]);
      const pixels = augmentBatch(train, indices, state.rng, augment);
      let r: StepResult;
      try {
        r = await args.engine.step(pixels, labels, lr);
      } catch (err) {
        if (err instanceof NonFiniteLossError) throw new UserError(divergedMessage(args, epoch, s + 1, `the loss became ${err.loss}`));
        if (err instanceof NonFiniteTeacherError) {
          throw new UserError(divergedMessage(args, epoch, s + 1, 'the teacher\'s outputs are non-finite (NaN or infinite logits)', `Check the teacher ${args.config.pathT ?? ''}: its weights or this batch make it produce non-finite logits.`));
        }
        throw err;
      }
      trainSeconds += (performance.now() - stepStart) / 1000;
      state.step++;
      lossSum += r.loss;
      for (const [k, v] of Object.entries(r.parts)) sums[k] = (sums[k] ?? 0) + v;
      correct += r.correct;
      rotCorrect += r.rotCorrect ?? 0;
      rotRows += r.rotRows ?? 0;
      const done = s + 1;
      hooks.onStep?.({
        generation, epoch, epochs: config.epochs, step: done, steps, lr,
        loss: lossSum / done,
        parts: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / done])),
        acc: (100 * correct) / (done * batchSize),
        imagesPerSecond: (done * batchSize) / trainSeconds,
      });
    }
    const val = config.valEvery > 0 && (epoch % config.valEvery === 0 || epoch === config.epochs) ? await validate(args) : undefined;
    const record: EpochRecord = {
      generation, epoch, lr, steps,
      loss: lossSum / steps,
      parts: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / steps])),
      acc: (100 * correct) / (steps * batchSize),
      ...(rotRows > 0 ? { rotAcc: (100 * rotCorrect) / rotRows } : {}),
      imagesPerSecond: (steps * batchSize) / trainSeconds,
      seconds: (performance.now() - started) / 1000,
      ...(val ? { val } : {}),
    };
    state.epoch = epoch;
    state.history.push(record);
    if (!(await saveCheckpoint(args, epoch === config.epochs))) {
      state.epoch = epoch - 1;
      state.history.pop();
      throw new UserError(divergedMessage(args, epoch, steps, 'the weights became non-finite'));
    }
    await appendLog(config.out, record);
    hooks.onEpoch?.(record);
  }
  return state.history;
}
