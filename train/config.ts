/**
 * Training configuration: the reference's hyperparameters in one place, the per-dataset recipes of
 * docs/method.md (Optimisation and schedules), and the model description a configuration implies.
 */
import { UserError } from '../data/errors.js';
import { paddingForSize, datasetImageSize, type DatasetName } from '../data/datasets.js';
import { FEW_SHOT_PROTOCOL } from '../data/protocol.js';
import { TOY_IMAGES_PER_CLASS } from '../data/toy.js';
import { conv4Spec, resnet12Spec, type ModelSpec } from '../models/spec.js';
import { checkMicroBatch } from './ort/micro-batch.js';

export const RECIPE_NAMES = ['CIFAR-FS', 'FC100', 'miniImageNet', 'tieredImageNet', 'toy'] as const;
export type RecipeName = (typeof RECIPE_NAMES)[number];
export const MODEL_NAMES = ['resnet12', 'conv4'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

/** Everything a Gen-0 or Gen-1 run depends on (the CLI flags resolve to this; checkpoints store it). */
export interface TrainConfig {
  /** 0 for Gen-0; 1 for a run distilling a Gen-0 teacher (later generations count up from it). */
  generation: number;
  dataset: DatasetName;
  dataRoot?: string;
  /** Image side; defaults to the dataset's (32 or 84). */
  imageSize: number;
  /** Toy dataset only: images per class of the generated set. */
  imagesPerClass?: number;
  /** Toy dataset only: the generator's seed (which classes exist and how they look), apart from the training seed. */
  toySeed?: number;
  model: ModelName;
  /** ResNet-12: four widths; Conv-4: one width (the first is used). */
  widths: number[];
  epochs: number;
  lrDecayEpochs: number[];
  learningRate: number;
  batchSize: number;
  /**
   * Images per micro-batch, a divisor of batchSize (the ONNX Runtime engine accumulates gradients over the
   * micro-batches of a step); unset = auto. Checkpoints record the size the steps used.
   */
  microBatch?: number;
  /** Weight of the self-supervised term (Gen-0: BCE on rotations; Gen-1: the x/x180 distance). */
  gamma: number;
  momentum: number;
  weightDecay: number;
  /** Gen-1: distillation temperature. */
  kdT: number;
  /** Gen-1: the teacher checkpoint (or ONNX graph). */
  pathT?: string;
  /** Gen-1: how many generations to distil in a row (Gen-2 from Gen-1, ...). */
  generations: number;
  seed: number;
  /** Augmentation: RandomCrop padding, horizontal flip, colour jitter strength. */
  padding: number;
  flip: boolean;
  jitter: number;
  /** Few-shot validation every N epochs (0 = never) with this many episodes of valWays-way valShots-shot. */
  valEvery: number;
  valEpisodes: number;
  valWays: number;
  valShots: number;
  valQueries: number;
  /** Augmented copies of each support image in validation (the reference's n_aug_support_samples); unset: one. */
  valAugSupportSamples?: number;
  /** Labels of the run (the reference's --tags, which only fed its experiment tracker): recorded, nothing else. */
  tags?: string[];
  /** Stop each epoch after this many steps (quick runs); undefined = the whole epoch. */
  maxStepsPerEpoch?: number;
  /** Output folder: checkpoints and log.jsonl. */
  out: string;
}

interface RecipeEntry { epochs: number; lrDecayEpochs: number[]; gamma: number; learningRate: number }
interface Recipe { gen0: RecipeEntry; gen1: RecipeEntry; note?: string }

/** The table of docs/method.md (Optimisation and schedules). tieredImageNet has no published Gen-1 recipe: miniImageNet's is used and said so. */
export const RECIPES: Record<RecipeName, Recipe> = {
  'CIFAR-FS': { gen0: { epochs: 65, lrDecayEpochs: [60], gamma: 2, learningRate: 0.05 }, gen1: { epochs: 65, lrDecayEpochs: [60], gamma: 0.1, learningRate: 0.001 } },
  FC100: { gen0: { epochs: 65, lrDecayEpochs: [60], gamma: 2, learningRate: 0.05 }, gen1: { epochs: 8, lrDecayEpochs: [3], gamma: 0.2, learningRate: 0.001 } },
  miniImageNet: { gen0: { epochs: 65, lrDecayEpochs: [60], gamma: 2, learningRate: 0.05 }, gen1: { epochs: 8, lrDecayEpochs: [5], gamma: 0.05, learningRate: 0.001 } },
  tieredImageNet: {
    gen0: { epochs: 60, lrDecayEpochs: [30, 40, 50], gamma: 2, learningRate: 0.05 },
    gen1: { epochs: 8, lrDecayEpochs: [5], gamma: 0.05, learningRate: 0.001 },
    note: 'tieredImageNet has no published Gen-1 recipe; using miniImageNet\'s (8 epochs, decay at 5, gamma 0.05)',
  },
  // A small synthetic set for quick runs and the demo: short schedules, the reference's rates.
  toy: { gen0: { epochs: 12, lrDecayEpochs: [10], gamma: 2, learningRate: 0.05 }, gen1: { epochs: 6, lrDecayEpochs: [5], gamma: 0.1, learningRate: 0.001 } },
};

/** The reference's batch size (both generations). */
export const DEFAULT_BATCH_SIZE = 64;

/** Settings a user may give; anything left out comes from the recipe, then from the reference's defaults. */
export type TrainOptions = Partial<TrainConfig> & { recipe?: RecipeName; out: string };

/** Resolves options into a full configuration for generation 0 or 1 (Gen-1 defaults cover later generations). */
export function resolveConfig(generation: 0 | 1, opts: TrainOptions): { config: TrainConfig; notes: string[] } {
  const notes: string[] = [];
  const recipeName = opts.recipe ?? (opts.dataset && opts.dataset in RECIPES ? (opts.dataset as RecipeName) : undefined);
  const recipe = recipeName ? RECIPES[recipeName] : undefined;
  if (opts.recipe && !recipe) throw new UserError(`unknown recipe "${opts.recipe}" (expected one of ${RECIPE_NAMES.join(', ')})`);
  if (recipe?.note && generation >= 1) notes.push(recipe.note);
  const entry = recipe ? (generation === 0 ? recipe.gen0 : recipe.gen1) : generation === 0 ? RECIPES['CIFAR-FS'].gen0 : RECIPES['CIFAR-FS'].gen1;
  const dataset = (opts.dataset ?? (opts.recipe as DatasetName | undefined) ?? 'CIFAR-FS') as DatasetName;
  const imageSize = opts.imageSize ?? datasetImageSize(dataset);
  const model = opts.model ?? 'resnet12';
  const widths = opts.widths ?? (model === 'resnet12' ? [64, 160, 320, 640] : [64]);
  const config: TrainConfig = {
    generation,
    dataset,
    dataRoot: opts.dataRoot,
    imageSize,
    imagesPerClass: dataset === 'toy' ? (opts.imagesPerClass ?? TOY_IMAGES_PER_CLASS) : undefined,
    toySeed: dataset === 'toy' ? (opts.toySeed ?? 0) : undefined,
    model,
    widths,
    epochs: opts.epochs ?? entry.epochs,
    lrDecayEpochs: opts.lrDecayEpochs ?? entry.lrDecayEpochs,
    learningRate: opts.learningRate ?? entry.learningRate,
    batchSize: opts.batchSize ?? DEFAULT_BATCH_SIZE,
    ...(opts.microBatch !== undefined ? { microBatch: opts.microBatch } : {}),
    gamma: opts.gamma ?? entry.gamma,
    momentum: opts.momentum ?? 0.9,
    weightDecay: opts.weightDecay ?? 5e-4,
    kdT: opts.kdT ?? 2,
    pathT: opts.pathT,
    generations: opts.generations ?? 1,
    seed: opts.seed ?? 0,
    padding: opts.padding ?? paddingForSize(imageSize),
    flip: opts.flip ?? true,
    jitter: opts.jitter ?? 0.4,
    valEvery: opts.valEvery ?? 0,
    valEpisodes: opts.valEpisodes ?? 100,
    valWays: opts.valWays ?? FEW_SHOT_PROTOCOL.nWays,
    valShots: opts.valShots ?? FEW_SHOT_PROTOCOL.nShots,
    valQueries: opts.valQueries ?? FEW_SHOT_PROTOCOL.nQueries,
    ...(opts.valAugSupportSamples !== undefined ? { valAugSupportSamples: opts.valAugSupportSamples } : {}),
    ...(opts.tags !== undefined ? { tags: opts.tags } : {}),
    maxStepsPerEpoch: opts.maxStepsPerEpoch,
    out: opts.out,
  };
  validateConfig(config);
  return { config, notes };
}

function checkInt(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new UserError(`${name} must be an integer >= ${min}, got ${v}`);
}

function checkPositive(name: string, v: number, allowZero = false): void {
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) throw new UserError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${v}`);
}

export function validateConfig(c: TrainConfig): void {
  if (!(MODEL_NAMES as readonly string[]).includes(c.model)) throw new UserError(`unknown model "${c.model}" (expected one of ${MODEL_NAMES.join(', ')})`);
  if (c.model === 'resnet12' && c.widths.length !== 4) throw new UserError(`--widths for resnet12 needs 4 numbers, got ${c.widths.length} (${c.widths.join(',')})`);
  if (c.model === 'conv4' && c.widths.length !== 1 && c.widths.length !== 4) throw new UserError(`--widths for conv4 needs 1 number, got ${c.widths.length}`);
  for (const w of c.widths) checkInt('each width', w, 1);
  checkInt('--epochs', c.epochs, 1);
  checkInt('--batch_size', c.batchSize, 1);
  if (c.microBatch !== undefined) checkMicroBatch(c.microBatch, c.batchSize);
  checkInt('--seed', c.seed, 0);
  checkInt('--image-size', c.imageSize, 8);
  checkInt('--generations', c.generations, 1);
  checkInt('--val-every', c.valEvery, 0);
  checkInt('--val-episodes', c.valEpisodes, 1);
  checkInt('--n_ways', c.valWays, 2);
  checkInt('--n_shots', c.valShots, 1);
  checkInt('--n_queries', c.valQueries, 1);
  if (c.valAugSupportSamples !== undefined) checkInt('--n_aug_support_samples', c.valAugSupportSamples, 0);
  if (c.maxStepsPerEpoch !== undefined) checkInt('--max-steps-per-epoch', c.maxStepsPerEpoch, 1);
  if (c.imagesPerClass !== undefined) checkInt('--images-per-class', c.imagesPerClass, 1);
  if (c.toySeed !== undefined) checkInt('--toy-seed', c.toySeed, 0);
  for (const d of c.lrDecayEpochs) checkInt('each of --lr_decay_epochs', d, 1);
  checkPositive('--learning_rate', c.learningRate);
  checkPositive('--gamma', c.gamma, true);
  checkPositive('--momentum', c.momentum, true);
  checkPositive('--weight_decay', c.weightDecay, true);
  checkPositive('--kd_T', c.kdT);
  checkPositive('--padding', c.padding, true);
  checkPositive('--jitter', c.jitter, true);
}

/** The model description a configuration trains, for a training set with `numClasses` classes. */
export function specFor(c: Pick<TrainConfig, 'model' | 'widths' | 'imageSize'>, numClasses: number): ModelSpec {
  return c.model === 'conv4'
    ? conv4Spec({ numClasses, imageSize: c.imageSize, width: c.widths[0] })
    : resnet12Spec({ numClasses, imageSize: c.imageSize, widths: c.widths });
}

/** Settings that change what a resumed run computes; differences are reported when resuming. */
export const RESULT_AFFECTING_KEYS: (keyof TrainConfig)[] = [
  'dataset', 'imageSize', 'imagesPerClass', 'toySeed', 'model', 'widths', 'epochs', 'lrDecayEpochs', 'learningRate', 'batchSize',
  'gamma', 'momentum', 'weightDecay', 'kdT', 'seed', 'padding', 'flip', 'jitter', 'maxStepsPerEpoch',
];
