/**
 * Gen-1 (and later generations): self-supervised knowledge distillation. The student starts as a copy of
 * the teacher; the teacher is frozen, runs in evaluation mode and sees only the unrotated batch x; the
 * student runs in training mode on [x; x180]. Loss: KD(T) on the unrotated rows + gamma * L2 / 3
 * (train/losses.ts). With `generations` N > 1, Gen-k distils from Gen-(k-1)'s final checkpoint.
 */
import { UserError } from '../data/errors.js';
import type { ModelSpec } from '../models/spec.js';
import { describeSpecMismatch } from './checkpoint.js';
import { resolveConfig, specFor, type TrainConfig, type TrainOptions } from './config.js';
import { createEngine } from './create-engine.js';
import type { RunOptions } from './gen0.js';
import { runEpochs, validate, type TrainResult } from './loop.js';
import type { TrainHooks } from './progress.js';
import { checkpointPathFor, loadTrainData, microBatchFor, prepareOutDir, startingPoint } from './setup.js';
import { loadTeacher, type TeacherSource } from './teacher.js';
import { isDatasetName } from '../data/datasets.js';

/** Checks that the teacher fits this run: the classes of the training set, its image size, explicit flags. */
function checkTeacherFits(teacherPath: string, spec: ModelSpec, options: TrainOptions, config: TrainConfig, numClasses: number): void {
  if (options.model !== undefined || options.widths !== undefined) {
    const wanted = specFor({ model: options.model ?? spec.arch, widths: options.widths ?? spec.widths, imageSize: spec.imageSize }, spec.numClasses);
    const mismatch = describeSpecMismatch(wanted, spec);
    if (mismatch) throw new UserError(`the teacher ${teacherPath} does not match --model/--widths: it has ${mismatch}`);
  }
  if (spec.numClasses !== numClasses) {
    throw new UserError(`the teacher ${teacherPath} classifies ${spec.numClasses} classes, but the ${config.dataset} training split has ${numClasses}; distil on the data the teacher was trained on`);
  }
  if (spec.imageSize !== config.imageSize) {
    throw new UserError(`the teacher ${teacherPath} takes ${spec.imageSize}x${spec.imageSize} images, but this run uses ${config.imageSize}x${config.imageSize} (set --image-size ${spec.imageSize})`);
  }
}

/** Options without the keys whose value is undefined (so that spreading them keeps inherited defaults). */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Defaults a Gen-1 run takes from its teacher: the dataset it was trained on and its image size. */
function inheritedFromTeacher(t: TeacherSource, options: TrainOptions): Partial<TrainOptions> {
  const inherited: Partial<TrainOptions> = { imageSize: t.spec.imageSize };
  const c = t.config ?? {};
  if (options.dataset === undefined && options.recipe === undefined && typeof c.dataset === 'string' && isDatasetName(c.dataset)) {
    inherited.dataset = c.dataset;
    if (typeof c.dataRoot === 'string') inherited.dataRoot = c.dataRoot;
    if (typeof c.imagesPerClass === 'number') inherited.imagesPerClass = c.imagesPerClass;
    if (typeof c.toySeed === 'number') inherited.toySeed = c.toySeed;
  }
  return inherited;
}

/** Distils `generations` generations in a row and returns each one's result. */
export async function trainGen1(options: TrainOptions & RunOptions, hooks: TrainHooks = {}): Promise<TrainResult[]> {
  if (!options.pathT) throw new UserError('Gen-1 needs a teacher: --path_t <gen0 checkpoint or ONNX graph>');
  // The first teacher is read before the data: its dataset and image size are the defaults of this run.
  const firstTeacher = await loadTeacher(options.pathT, hooks, { model: options.model, widths: options.widths, imageSize: options.imageSize ?? 32, numClasses: 0 });
  const resolved = resolveConfig(1, { ...inheritedFromTeacher(firstTeacher, options), ...definedOnly(options), out: options.out });
  for (const n of resolved.notes) hooks.log?.(n);
  const base = resolved.config;
  await prepareOutDir(base.out);
  const data = await loadTrainData(base);
  const numClasses = data.train.classNames.length;
  const results: TrainResult[] = [];
  for (let generation = 1; generation <= base.generations; generation++) {
    const teacherPath = generation === 1 ? options.pathT : checkpointPathFor(base.out, generation - 1);
    const teacherSource = generation === 1 ? firstTeacher : await loadTeacher(teacherPath, hooks);
    const spec = teacherSource.spec;
    checkTeacherFits(teacherPath, spec, options, base, numClasses);
    const config: TrainConfig = { ...base, generation, pathT: teacherPath, model: spec.arch, widths: spec.arch === 'conv4' ? [spec.widths[0]] : [...spec.widths] };
    const checkpointPath = checkpointPathFor(config.out, generation);
    const start = await startingPoint({ path: checkpointPath, resume: options.resume ?? false, generation, spec, config, hooks });
    const ckpt = start.checkpoint;
    // The student starts as the teacher (running statistics included); a fresh DropBlock schedule.
    const engine = await createEngine({
      spec, weights: ckpt ? ckpt.weights : teacherSource.weights, batchSize: config.batchSize,
      loss: { kind: 'gen1', gamma: config.gamma, temperature: config.kdT }, sgd: { momentum: config.momentum, weightDecay: config.weightDecay },
      dropoutSeed: config.seed, dropBlockCalls: ckpt?.dropBlockCalls ?? 0, momentum: ckpt?.optimizer?.momentum, teacher: teacherSource.weights,
      microBatch: microBatchFor(config, ckpt, hooks),
    }, { ...options, log: options.log ?? hooks.log });
    try {
      const args = {
        generation, config, engine, train: data.train, val: data.val, normalization: data.normalization,
        checkpointPath, state: start.state, hooks,
      };
      hooks.onStart?.({ generation, ...engine.models() });
      const initialValidation = !ckpt ? await validate(args) : undefined;
      if (initialValidation) hooks.log?.(`gen${generation} student before training (= its teacher): val ${initialValidation.accuracy.toFixed(2)}%`);
      const history = await runEpochs(args);
      results.push({ generation, checkpoint: checkpointPath, config, history, initialValidation });
    } finally {
      await engine.dispose();
    }
  }
  return results;
}
