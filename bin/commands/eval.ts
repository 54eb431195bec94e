/**
 * `skd eval`: few-shot evaluation of an ONNX feature extractor on a dataset split (the protocol of
 * infer/evaluate.ts). Prints a one-line result; --json prints the JSON report on stdout, --out writes it to a file.
 * Progress goes to stderr: a bar with the running mean ± CI on a terminal, a line per tenth of the episodes otherwise.
 */
import { existsSync } from 'node:fs';
import cliProgress from 'cli-progress';
import type { Argv, CommandModule } from 'yargs';
import { DATASET_NAMES, datasetNormalization, datasetPadding, isDatasetName, loadDataset, paddingForSize, type DatasetName } from '../../data/datasets.js';
import { writeFileAtomic } from '../../data/atomic-write.js';
import { UserError } from '../../data/errors.js';
import { FEW_SHOT_PROTOCOL } from '../../data/protocol.js';
import { checkEvalOptions, evaluateFewShot, type EvalReport } from '../../infer/evaluate.js';
import { HEAD_KINDS, type HeadKind } from '../../infer/heads/index.js';
import { DEFAULT_BATCH_SIZE, FeatureExtractor } from '../../infer/session.js';
import { episodeOptions, type EpisodeArgs } from '../options/episodes.js';
import { foreignGraphOptions, foreignGraphOverrides, type ForeignGraphArgs } from '../options/foreign-graph.js';
import { positiveInt } from '../options/parse.js';
import { MODEL_NAMES_HELP, isModelName, modelFromName } from '../options/reference.js';
import { runtimeOf, runtimeOptions, type RuntimeArgs } from '../options/runtime.js';

interface EvalArgs extends EpisodeArgs, ForeignGraphArgs, RuntimeArgs {
  model?: string;
  model_path?: string;
  dataset: string;
  'data-root'?: string;
  split: string;
  n_test_runs: number;
  seed: number;
  head: string;
  json: boolean;
  out?: string;
  'batch-size': number;
}

export const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval',
  describe: 'Few-shot evaluation of an ONNX model: seeded episodes, augmented support, head per episode, mean ± 95% CI',
  builder: (y: Argv) => foreignGraphOptions(runtimeOptions(episodeOptions(y
    .option('model', { type: 'string', describe: `ONNX feature extractor (skd export, or a foreign graph described by the flags below), or a checkpoint (skd's .safetensors, a PyTorch .pth), exported in memory; with --model_path, the architecture: ${MODEL_NAMES_HELP}` })
    .option('model_path', { type: 'string', describe: 'The reference\'s name for the model file; --model then names its architecture, checked against the file\'s metadata' })
    .option('dataset', { type: 'string', demandOption: true, describe: `dataset: ${DATASET_NAMES.join(', ')}` })
    .option('data-root', { type: 'string', alias: 'data_root', describe: 'folder holding the dataset files' })
    .option('split', { type: 'string', default: 'test', describe: 'split to draw episodes from (test or val)' }), 'eval')
    .option('n_test_runs', { type: 'number', default: FEW_SHOT_PROTOCOL.nTestRuns, alias: 'n-test-runs', describe: 'episodes' })
    .option('seed', { type: 'number', default: FEW_SHOT_PROTOCOL.seed, describe: 'episode i is drawn with seed + i' })
    .option('head', { type: 'string', default: 'logreg', describe: `head fitted per episode: ${HEAD_KINDS.join(', ')}` })
    .option('json', { type: 'boolean', default: false, describe: 'print the JSON report on stdout (the one-line result goes to stderr)' })
    .option('out', { type: 'string', describe: 'write the JSON report to this file' })
    .option('batch-size', { type: 'number', default: DEFAULT_BATCH_SIZE, alias: 'batch_size', describe: 'images per onnxruntime run (small batches stay in cache on CPU)' }))) as unknown as Argv<EvalArgs>,
  handler: async (args) => {
    await runEval(args);
  },
};

/**
 * The file to evaluate and the architecture it must hold: `--model FILE`, or the reference's
 * `--model ARCH --model_path FILE`.
 */
function modelFileOf(args: EvalArgs): { path: string; arch?: string } {
  if (args.model_path !== undefined) {
    if (args.model === undefined) return { path: args.model_path };
    return { path: args.model_path, arch: modelFromName('--model', args.model) };
  }
  if (args.model === undefined) throw new UserError('name the model to evaluate: --model model.onnx (or the reference\'s --model ARCH --model_path FILE)');
  if (isModelName(args.model) && !existsSync(args.model)) {
    modelFromName('--model', args.model); // unsupported names get their own line
    throw new UserError(`--model ${args.model} names an architecture; give the file to evaluate with --model_path (or pass the file as --model)`);
  }
  return { path: args.model };
}

/** A checkpoint given as --model (by extension) exported to ONNX in memory; undefined for an ONNX file. */
async function checkpointAsOnnx(model: string, dataset: DatasetName): Promise<Uint8Array | undefined> {
  if (!/\.(pth|pt|safetensors)$/i.test(model)) return undefined;
  const { loadAnyCheckpoint } = await import('../../export/from-checkpoint.js');
  const { exportOnnx } = await import('../../export/onnx.js');
  const ckpt = await loadAnyCheckpoint(model, dataset);
  for (const n of ckpt.notes) process.stderr.write(`${n}\n`);
  const configDataset = typeof ckpt.config.dataset === 'string' && isDatasetName(ckpt.config.dataset) ? ckpt.config.dataset : dataset;
  return exportOnnx({
    spec: ckpt.spec, weights: ckpt.weights, normalization: datasetNormalization(configDataset),
    metadata: { dataset: configDataset, trainingConfig: ckpt.config, epoch: ckpt.epoch },
  });
}

async function runEval(args: EvalArgs): Promise<void> {
  // Everything that can be checked from the flags alone, before loading anything.
  const model = modelFileOf(args);
  if (!isDatasetName(args.dataset)) throw new UserError(`unknown dataset "${args.dataset}" (expected one of ${DATASET_NAMES.join(', ')})`);
  const dataset = args.dataset;
  if (!(HEAD_KINDS as readonly string[]).includes(args.head)) throw new UserError(`unknown head "${args.head}" (expected one of ${HEAD_KINDS.join(', ')})`);
  const head = args.head as HeadKind;
  const nWays = positiveInt('n_ways', args.n_ways);
  const nShots = positiveInt('n_shots', args.n_shots);
  const nQueries = positiveInt('n_queries', args.n_queries);
  const nTestRuns = positiveInt('n_test_runs', args.n_test_runs);
  const nAug = positiveInt('n_aug_support_samples', args.n_aug_support_samples, 0);
  const seed = positiveInt('seed', args.seed, 0);
  const batchSize = positiveInt('batch-size', args['batch-size']);
  const runtime = runtimeOf(args);
  const overrides = foreignGraphOverrides(args);

  const modelBytes = await checkpointAsOnnx(model.path, dataset);
  const extractor = await FeatureExtractor.open(model.path, {
    modelBytes, ...runtime, output: args.output, overrides,
    defaults: { ...datasetNormalization(dataset), normalizationInGraph: false },
  });
  try {
    const stored = extractor.metadata['skd.arch'];
    if (model.arch !== undefined && stored !== undefined && stored !== model.arch) {
      throw new UserError(`--model ${args.model} is ${model.arch}, but ${model.path} holds a ${stored} backbone`);
    }
    const size = extractor.preprocessing.size;
    const set = await loadDataset({ dataset, dataRoot: args['data-root'], split: args.split, imageSize: dataset === 'folder' ? size : undefined });
    const padding = dataset === 'folder' ? paddingForSize(set.height) : datasetPadding(dataset);
    const options = {
      extractor, set, nWays, nShots, nQueries, nTestRuns, nAugSupportSamples: nAug, seed, head, padding,
      normalization: extractor.inputNormalization(), batchSize,
    };
    checkEvalOptions(options);

    const progress = makeProgress(nTestRuns, set.count);
    let report: EvalReport;
    try {
      report = await evaluateFewShot({ ...options, onEpisode: progress.episode, onQueryProgress: progress.queries });
    } finally {
      progress.stop();
    }
    const full = {
      command: 'skd eval',
      model: {
        path: model.path, provider: extractor.provider, featureDim: extractor.featureDim,
        preprocessing: extractor.preprocessing, metadata: extractor.metadata,
      },
      ...report,
    };
    const line = `${nWays}-way ${nShots}-shot: ${report.meanPercent.toFixed(2)} ± ${report.ci95Percent.toFixed(2)} % (${nTestRuns} episodes, ${head})`;
    const json = JSON.stringify(full, null, 2) + '\n';
    if (args.out) writeFileAtomic(args.out, json);
    if (args.json) {
      process.stderr.write(line + '\n');
      process.stdout.write(json);
    } else {
      process.stdout.write(line + '\n');
    }
  } finally {
    await extractor.close();
  }
}

/**
 * On a terminal: a bar for the query-feature pass, then one over episodes with the running mean ± CI. Otherwise a
 * line per tenth of each pass.
 */
function makeProgress(total: number, images: number) {
  const tty = process.stderr.isTTY === true;
  let bar: cliProgress.SingleBar | null = null;
  let phase: 'queries' | 'episodes' | null = null;
  let lastTenth = -1;
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  const startBar = (next: 'queries' | 'episodes', count: number, format: string) => {
    if (phase === next) return;
    if (bar) bar.stop();
    phase = next;
    lastTenth = -1;
    if (tty) {
      bar = new cliProgress.SingleBar({ format, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
      bar.start(count, 0, { mean: '-', ci: '-' });
    }
  };
  const tenthReached = (done: number, count: number) => {
    const tenth = Math.floor((10 * done) / count);
    if (tenth === lastTenth || (tenth === 0 && done !== count)) return false;
    lastTenth = tenth;
    return true;
  };
  return {
    queries(done: number, all: number) {
      startBar('queries', all, 'query features |{bar}| {value}/{total} images | eta {eta_formatted}');
      if (bar) bar.update(done);
      else if (tenthReached(done, all)) process.stderr.write(`query features: ${done}/${all} images (of ${images} in the split), ${elapsed()}\n`);
    },
    episode(index: number, _acc: number, running: { mean: number; halfWidth: number }) {
      startBar('episodes', total, 'episodes |{bar}| {value}/{total} | {mean} ± {ci} % | eta {eta_formatted}');
      const done = index + 1;
      const ci = Number.isFinite(running.halfWidth) ? running.halfWidth.toFixed(2) : '-';
      if (bar) bar.update(done, { mean: running.mean.toFixed(2), ci });
      else if (tenthReached(done, total)) process.stderr.write(`episode ${done}/${total}: ${running.mean.toFixed(2)} ± ${ci} %, ${elapsed()}\n`);
    },
    stop() {
      if (bar) bar.stop();
      bar = null;
    },
  };
}

