/**
 * Gen-0: supervised classification with rotation self-supervision. Each batch x becomes
 * X = [x, x90, x180, x270] (rotated after normalisation); the network runs in training mode on X and the
 * loss is CE on all 4B rows plus gamma * BCE on the rotation logits (train/losses.ts).
 */
import { initWeights } from '../models/init.js';
import { resolveConfig, specFor, type TrainOptions } from './config.js';
import { createEngine } from './create-engine.js';
import type { EngineOptions } from './engine.js';
import { runEpochs, validate, type TrainResult } from './loop.js';
import type { TrainHooks } from './progress.js';
import { checkpointPathFor, loadTrainData, microBatchFor, prepareOutDir, startingPoint } from './setup.js';

export interface RunOptions extends EngineOptions {
  /** Continue the checkpoint in the output folder. */
  resume?: boolean;
}

/** Trains Gen-0 from scratch (or resumes it) and returns the per-epoch history. */
export async function trainGen0(options: TrainOptions & RunOptions, hooks: TrainHooks = {}): Promise<TrainResult> {
  const { config, notes } = resolveConfig(0, options);
  for (const n of notes) hooks.log?.(n);
  await prepareOutDir(config.out);
  const data = await loadTrainData(config);
  const spec = specFor(config, data.train.classNames.length);
  const checkpointPath = checkpointPathFor(config.out, 0);
  const start = await startingPoint({ path: checkpointPath, resume: options.resume ?? false, generation: 0, spec, config, hooks });
  const ckpt = start.checkpoint;
  const engine = await createEngine({
    spec, weights: ckpt ? ckpt.weights : initWeights(spec, config.seed), batchSize: config.batchSize,
    loss: { kind: 'gen0', gamma: config.gamma }, sgd: { momentum: config.momentum, weightDecay: config.weightDecay },
    dropoutSeed: config.seed, dropBlockCalls: ckpt?.dropBlockCalls ?? 0, momentum: ckpt?.optimizer?.momentum,
    microBatch: microBatchFor(config, ckpt, hooks),
  }, { ...options, log: options.log ?? hooks.log });
  try {
    const args = {
      generation: 0, config, engine, train: data.train, val: data.val, normalization: data.normalization,
      checkpointPath, state: start.state, hooks,
    };
    hooks.onStart?.({ generation: 0, ...engine.models() });
    const initialValidation = !ckpt ? await validate(args) : undefined;
    if (initialValidation) hooks.log?.(`gen0 before training: val ${initialValidation.ways}-way ${initialValidation.shots}-shot ${initialValidation.accuracy.toFixed(2)}%`);
    const history = await runEpochs(args);
    return { generation: 0, checkpoint: checkpointPath, config, history, initialValidation };
  } finally {
    await engine.dispose();
  }
}
