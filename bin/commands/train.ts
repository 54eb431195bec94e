/** `skd train gen0|gen1`: thin layer over train/gen0.ts and train/gen1.ts. */
import type { Argv, CommandModule } from 'yargs';
import { DATASET_NAMES, type DatasetName } from '../../data/datasets.js';
import { UserError } from '../../data/errors.js';
import { BACKEND_CHOICES, selectBackend, type BackendChoice } from '../../models/tfjs-backend.js';
import { ENGINE_NAMES, TRAIN_DEVICES, type EngineName, type TrainDevice } from '../../train/engine.js';
import { DEFAULT_BATCH_SIZE, RECIPE_NAMES, type RecipeName, type TrainOptions } from '../../train/config.js';
import { checkEngineMicroBatch } from '../../train/create-engine.js';
import { CONV_ALGORITHMS, type ConvAlgorithm } from '../../train/ort/convolution.js';
import { trainGen0, type RunOptions } from '../../train/gen0.js';
import { trainGen1 } from '../../train/gen1.js';
import type { TrainResult } from '../../train/loop.js';
import { consoleHooks } from '../../train/progress.js';
import { removeTempFiles } from '../../train/setup.js';
import { episodeOptions, type EpisodeArgs } from '../options/episodes.js';
import { microBatchOf, microBatchOptions, type MicroBatchArgs } from '../options/micro-batch.js';
import { numberList, stringList } from '../options/parse.js';
import { MODEL_NAMES_HELP, modelFromName } from '../options/reference.js';

interface TrainArgs extends Partial<EpisodeArgs>, MicroBatchArgs {
  recipe?: RecipeName;
  dataset?: DatasetName;
  'data-root'?: string;
  model?: string;
  model_s?: string;
  model_t?: string;
  tags?: string;
  widths?: string;
  'image-size'?: number;
  'images-per-class'?: number;
  'toy-seed'?: number;
  epochs?: number;
  lr_decay_epochs?: string;
  learning_rate?: number;
  batch_size?: number;
  gamma?: number;
  momentum?: number;
  weight_decay?: number;
  kd_T?: number;
  path_t?: string;
  generations?: number;
  seed?: number;
  out: string;
  engine: EngineName;
  conv: ConvAlgorithm;
  device: TrainDevice;
  backend: BackendChoice;
  threads?: number;
  resume: boolean;
  'val-every'?: number;
  'val-episodes'?: number;
  'max-steps-per-epoch'?: number;
  json: boolean;
}

function commonOptions(y: Argv, generation: 0 | 1): Argv<TrainArgs> {
  const withCommon = y
    .option('recipe', { choices: RECIPE_NAMES, describe: 'Per-dataset epochs, lr decay, gamma and lr of the reference (also picks the dataset)' })
    .option('dataset', { choices: DATASET_NAMES, describe: 'Training data (default: the recipe\'s, else CIFAR-FS)' })
    .option('data-root', { alias: 'data_root', type: 'string', describe: 'Folder holding the dataset files' })
    .option('model', { type: 'string', describe: `Backbone: ${MODEL_NAMES_HELP}; ${generation === 0 ? 'default resnet12' : 'must match the teacher (default: the teacher\'s)'}` })
    .option('widths', { type: 'string', describe: 'Comma list: 4 widths for resnet12 (default 64,160,320,640), 1 for conv4 (64)' })
    .option('image-size', { alias: 'image_size', type: 'number', describe: 'Image side (default: the dataset\'s; toy and folder sets are generated/resized to it)' })
    .option('images-per-class', { alias: 'images_per_class', type: 'number', describe: 'Toy dataset: images per class (default 60)' })
    .option('toy-seed', { alias: 'toy_seed', type: 'number', describe: 'Toy dataset: the generator\'s seed (default 0), separate from --seed' })
    .option('epochs', { type: 'number', describe: 'Training epochs (recipe)' })
    .option('lr_decay_epochs', { alias: 'lr-decay-epochs', type: 'string', describe: 'Comma list of epochs after which lr is multiplied by 0.1 (recipe)' })
    .option('learning_rate', { alias: ['learning-rate', 'lr'], type: 'number', describe: `Base learning rate (default ${generation === 0 ? 0.05 : 0.001})` })
    .option('batch_size', { alias: 'batch-size', type: 'number', describe: 'Batch size, drop-last (default 64)' })
    .option('gamma', { type: 'number', describe: generation === 0 ? 'Weight of the rotation BCE term (default 2)' : 'Weight of the x/x180 distance term (recipe)' })
    .option('momentum', { type: 'number', describe: 'SGD momentum (default 0.9)' })
    .option('weight_decay', { alias: 'weight-decay', type: 'number', describe: 'SGD weight decay on all parameters (default 5e-4)' })
    .option('seed', { type: 'number', describe: 'Seed of initial weights, shuffling, augmentation and dropout masks (default 0)' })
    .option('out', { alias: 'model_path', type: 'string', demandOption: true, describe: 'Output folder: gen<N>.safetensors checkpoints and log.jsonl (--model_path: the reference\'s name; skd writes into it directly, without a run subfolder)' })
    .option('tags', { type: 'string', describe: 'Comma list of labels for the run, recorded in the checkpoint\'s config (the reference sent them to its experiment tracker)' })
    .option('engine', { choices: ENGINE_NAMES, default: 'ort' as EngineName, describe: 'Training engine: ONNX Runtime graphs (ort) or TensorFlow.js (tfjs)' })
    .option('conv', {
      choices: CONV_ALGORITHMS, default: 'winograd' as ConvAlgorithm,
      describe: 'ONNX Runtime engine: 3x3 convolutions as Winograd F(4x4, 3x3) (fast; within about 1e-5 of a direct convolution) or direct (one product per kernel tap; slower)',
    })
    .option('device', { choices: TRAIN_DEVICES, default: 'auto' as TrainDevice, describe: 'ONNX Runtime engine: execution provider (auto = CUDA when its provider is installed, else CPU)' })
    .option('backend', { choices: BACKEND_CHOICES, default: 'auto' as BackendChoice, describe: 'TensorFlow.js backend (the tfjs engine; validation with either engine)' })
    .option('threads', { type: 'number', describe: 'Threads of ONNX Runtime or of the WebAssembly backend (default: one per core; wasm at most 8)' })
    .option('resume', { type: 'boolean', default: false, describe: 'Continue the checkpoint in --out (same settings give the same result as an uninterrupted run)' })
    .option('val-every', { alias: 'val_every', type: 'number', describe: 'Nearest-centroid 5-way 1-shot validation on the val split every N epochs (0 = off)' })
    .option('val-episodes', { alias: 'val_episodes', type: 'number', describe: 'Episodes per validation (default 100)' })
    .option('max-steps-per-epoch', { alias: 'max_steps_per_epoch', type: 'number', describe: 'Cap steps per epoch (quick runs)' })
    .option('json', { type: 'boolean', default: false, describe: 'Print the run\'s result (history, checkpoint path) as JSON on stdout' });
  return episodeOptions(microBatchOptions(withCommon), 'validation') as unknown as Argv<TrainArgs>;
}

/** --model, and Gen-1's --model_s (student) and --model_t (teacher): one architecture, since the student starts as its teacher. */
function modelOf(a: TrainArgs): TrainOptions['model'] {
  const given = (['model', 'model_s', 'model_t'] as const).filter((flag) => a[flag] !== undefined);
  const models = given.map((flag) => modelFromName(`--${flag}`, String(a[flag])));
  if (models.some((m) => m !== models[0])) {
    throw new UserError(`${given.map((flag, i) => `--${flag} ${String(a[flag])} (${models[i]})`).join(', ')}: skd's student starts as a copy of its teacher, so they must name one architecture`);
  }
  return models[0];
}

function toOptions(a: TrainArgs): TrainOptions & RunOptions {
  return {
    recipe: a.recipe,
    dataset: a.dataset,
    dataRoot: a['data-root'],
    model: modelOf(a),
    tags: stringList(a.tags),
    widths: numberList('widths', a.widths),
    imageSize: a['image-size'],
    imagesPerClass: a['images-per-class'],
    toySeed: a['toy-seed'],
    epochs: a.epochs,
    lrDecayEpochs: numberList('lr_decay_epochs', a.lr_decay_epochs),
    learningRate: a.learning_rate,
    batchSize: a.batch_size,
    microBatch: microBatchOf(a),
    gamma: a.gamma,
    momentum: a.momentum,
    weightDecay: a.weight_decay,
    kdT: a.kd_T,
    pathT: a.path_t,
    generations: a.generations,
    seed: a.seed,
    out: a.out,
    valEvery: a['val-every'],
    valEpisodes: a['val-episodes'],
    maxStepsPerEpoch: a['max-steps-per-epoch'],
    valWays: a.n_ways,
    valShots: a.n_shots,
    valQueries: a.n_queries,
    valAugSupportSamples: a.n_aug_support_samples,
    resume: a.resume,
    engine: a.engine,
    device: a.device,
    convolution: a.conv,
    threads: a.threads,
  };
}

function finish(results: TrainResult[], json: boolean): void {
  for (const r of results) {
    const last = r.history[r.history.length - 1];
    const val = last?.val ? `, val ${last.val.accuracy.toFixed(2)}%` : '';
    process.stderr.write(`gen${r.generation} done: ${r.checkpoint}${last ? ` (epoch ${last.epoch}, loss ${last.loss.toFixed(4)}${val})` : ''}\n`);
  }
  if (json) process.stdout.write(JSON.stringify(results.length === 1 ? results[0] : results, null, 2) + '\n');
}

async function run(generation: 0 | 1, a: TrainArgs): Promise<void> {
  const options = toOptions(a);
  const hooks = consoleHooks();
  // Ctrl-C: restore the terminal and say how to continue (checkpoints are atomic, so nothing is half-written).
  const onInterrupt = (): void => {
    hooks.close();
    removeTempFiles(a.out);
    process.stderr.write(`interrupted: the last completed epoch is saved in ${a.out}; run the same command with --resume to continue\n`);
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  try {
    checkEngineMicroBatch(a.engine, options.microBatch, options.batchSize ?? DEFAULT_BATCH_SIZE);
    // Only the tfjs engine trains on TensorFlow.js: with ort, its backend line would mislead.
    await selectBackend(a.backend, { threads: a.threads, log: a.engine === 'tfjs' ? hooks.log : () => undefined });
    if (generation === 0) finish([await trainGen0(options, hooks)], a.json);
    else finish(await trainGen1(options, hooks), a.json);
  } finally {
    process.off('SIGINT', onInterrupt);
    hooks.close();
  }
}

const gen0Command: CommandModule<object, TrainArgs> = {
  command: 'gen0',
  describe: 'Gen-0: classification + rotation self-supervision (CE + gamma * BCE on four rotations)',
  builder: (y) => commonOptions(y, 0),
  handler: (a) => run(0, a),
};

const gen1Command: CommandModule<object, TrainArgs> = {
  command: 'gen1',
  describe: 'Gen-1: self-supervised distillation from a frozen teacher (KD(T) + gamma * ||z(x) - z(x180)|| / 3)',
  builder: (y) => commonOptions(y, 1)
    .option('path_t', { alias: ['path-t', 'teacher'], type: 'string', demandOption: true, describe: 'Teacher: a gen0 (or earlier gen1) checkpoint, a PyTorch .pth of the reference code, or an ONNX graph with logits' })
    .option('kd_T', { alias: ['kd-t', 'kd-T'], type: 'number', describe: 'Distillation temperature (default 2)' })
    .option('generations', { type: 'number', describe: 'Distil this many generations in a row: Gen-2 learns from Gen-1, ... (default 1)' })
    .option('model_s', { type: 'string', describe: 'The reference\'s student architecture: the same as --model' })
    .option('model_t', { type: 'string', describe: 'The reference\'s teacher architecture: checked against --path_t (the student starts as the teacher)' }) as unknown as Argv<TrainArgs>,
  handler: (a) => run(1, a),
};

export const trainCommand: CommandModule = {
  command: 'train',
  describe: 'Train Gen-0 or distil Gen-1 (ONNX Runtime or TensorFlow.js); writes checkpoints and log.jsonl',
  builder: (y) => y.command(gen0Command as unknown as CommandModule).command(gen1Command as unknown as CommandModule).demandCommand(1, 'Name a generation: skd train gen0 | gen1'),
  handler: () => undefined,
};
