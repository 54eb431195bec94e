/**
 * `skd eval`: few-shot evaluation of an ONNX feature extractor on a dataset split (the protocol of
 * infer/evaluate.ts). Prints a one-line result; --json prints the JSON report on stdout, --out writes it to a file.
 * Progress goes to stderr: a bar with the running mean ± CI on a terminal, a line per tenth of the episodes otherwise.
 */
import cliProgress from 'cli-progress';
import type { Argv, CommandModule } from 'yargs';
import { DATASET_NAMES, datasetNormalization, datasetPadding, isDatasetName, loadDataset, paddingForSize, type DatasetName } from '../../data/datasets.js';
import { writeFileAtomic } from '../../data/atomic-write.js';
import { UserError } from '../../data/errors.js';
import { checkEvalOptions, evaluateFewShot, type EvalReport } from '../../infer/evaluate.js';
import { HEAD_KINDS, type HeadKind } from '../../infer/heads/index.js';
import { DEFAULT_BATCH_SIZE, DEVICES, FeatureExtractor, type Device, type Preprocessing } from '../../infer/session.js';

interface EvalArgs {
  model: string;
  dataset: string;
  'data-root'?: string;
  split: string;
  n_ways: number;
  n_shots: number;
  n_queries: number;
  n_test_runs: number;
  n_aug_support_samples: number;
  seed: number;
  head: string;
  json: boolean;
  out?: string;
  device: string;
  threads?: number;
  layout?: string;
  mean?: string;
  std?: string;
  size?: number;
  output?: string;
  'batch-size': number;
}

export const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval',
  describe: 'Few-shot evaluation of an ONNX model: seeded episodes, augmented support, head per episode, mean ± 95% CI',
  builder: (y: Argv) => y
    .option('model', { type: 'string', demandOption: true, describe: 'ONNX feature extractor (skd export, or a foreign graph described by the flags below), or a checkpoint (skd\'s .safetensors, a PyTorch .pth), exported in memory' })
    .option('dataset', { type: 'string', demandOption: true, describe: `dataset: ${DATASET_NAMES.join(', ')}` })
    .option('data-root', { type: 'string', alias: 'data_root', describe: 'folder holding the dataset files' })
    .option('split', { type: 'string', default: 'test', describe: 'split to draw episodes from (test or val)' })
    .option('n_ways', { type: 'number', default: 5, alias: 'n-ways', describe: 'classes per episode (N)' })
    .option('n_shots', { type: 'number', default: 1, alias: 'n-shots', describe: 'support images per class (K)' })
    .option('n_queries', { type: 'number', default: 15, alias: 'n-queries', describe: 'query images per class' })
    .option('n_test_runs', { type: 'number', default: 600, alias: 'n-test-runs', describe: 'episodes' })
    .option('n_aug_support_samples', { type: 'number', default: 5, alias: 'n-aug-support-samples', describe: 'augmented copies of each support image (0 and 1 both mean one, as the reference)' })
    .option('seed', { type: 'number', default: 0, describe: 'episode i is drawn with seed + i' })
    .option('head', { type: 'string', default: 'logreg', describe: `head fitted per episode: ${HEAD_KINDS.join(', ')}` })
    .option('json', { type: 'boolean', default: false, describe: 'print the JSON report on stdout (the one-line result goes to stderr)' })
    .option('out', { type: 'string', describe: 'write the JSON report to this file' })
    .option('device', { type: 'string', default: 'auto', describe: `execution provider: ${DEVICES.join(', ')} (auto: CUDA if installed, else CPU)` })
    .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads (default: one per core)' })
    .option('batch-size', { type: 'number', default: DEFAULT_BATCH_SIZE, alias: 'batch_size', describe: 'images per onnxruntime run (small batches stay in cache on CPU)' })
    .option('layout', { type: 'string', describe: 'input layout of a graph without skd metadata: nchw or nhwc' })
    .option('mean', { type: 'string', describe: 'input normalisation mean, 3 numbers on the 0-1 scale ("0.5,0.49,0.44"); default: the model\'s metadata, else the dataset\'s' })
    .option('std', { type: 'string', describe: 'input normalisation std, 3 numbers on the 0-1 scale' })
    .option('size', { type: 'number', describe: 'input image size of a graph without skd metadata' })
    .option('output', { type: 'string', describe: 'name of the feature output (default: features)' }) as unknown as Argv<EvalArgs>,
  handler: async (args) => {
    await runEval(args);
  },
};

function positiveInt(name: string, v: number | undefined, min = 1): number {
  if (v === undefined || !Number.isInteger(v) || v < min) throw new UserError(`--${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

function parseTriple(flag: string, s: string | undefined): [number, number, number] | undefined {
  if (s === undefined) return undefined;
  const parts = s.replace(/^\s*\[|\]\s*$/g, '').split(/[\s,]+/).filter((p) => p.length > 0).map(Number);
  if (parts.length !== 3 || parts.some((v) => !Number.isFinite(v))) throw new UserError(`--${flag} expects 3 numbers such as "0.5,0.5,0.5", got "${s}"`);
  return parts as [number, number, number];
}

/** A flag given twice arrives as an array: the last one wins, as on most command lines. */
function last<T>(v: T | T[]): T {
  return Array.isArray(v) ? v[v.length - 1]! : v;
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

async function runEval(raw: EvalArgs): Promise<void> {
  const args = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, last(v)])) as unknown as EvalArgs;
  // Everything that can be checked from the flags alone, before loading anything.
  if (!isDatasetName(args.dataset)) throw new UserError(`unknown dataset "${args.dataset}" (expected one of ${DATASET_NAMES.join(', ')})`);
  const dataset = args.dataset;
  if (!(HEAD_KINDS as readonly string[]).includes(args.head)) throw new UserError(`unknown head "${args.head}" (expected one of ${HEAD_KINDS.join(', ')})`);
  const head = args.head as HeadKind;
  if (!(DEVICES as readonly string[]).includes(args.device)) throw new UserError(`unknown device "${args.device}" (expected one of ${DEVICES.join(', ')})`);
  if (args.layout !== undefined && args.layout !== 'nchw' && args.layout !== 'nhwc') throw new UserError(`--layout must be nchw or nhwc, got "${args.layout}"`);
  const nWays = positiveInt('n_ways', args.n_ways);
  const nShots = positiveInt('n_shots', args.n_shots);
  const nQueries = positiveInt('n_queries', args.n_queries);
  const nTestRuns = positiveInt('n_test_runs', args.n_test_runs);
  const nAug = positiveInt('n_aug_support_samples', args.n_aug_support_samples, 0);
  const seed = positiveInt('seed', args.seed, 0);
  const batchSize = positiveInt('batch-size', args['batch-size']);
  if (args.threads !== undefined) positiveInt('threads', args.threads, 0);
  if (args.size !== undefined) positiveInt('size', args.size);
  const mean = parseTriple('mean', args.mean);
  const std = parseTriple('std', args.std);
  if (std?.some((v) => !(v > 0))) throw new UserError(`--std values must be positive, got "${args.std}"`);

  const overrides: Partial<Preprocessing> = {};
  if (args.layout) overrides.layout = args.layout as 'nchw' | 'nhwc';
  if (args.size !== undefined) overrides.size = args.size;
  if (mean) overrides.mean = mean;
  if (std) overrides.std = std;
  const modelBytes = await checkpointAsOnnx(args.model, dataset);
  const extractor = await FeatureExtractor.open(args.model, {
    modelBytes, device: args.device as Device, threads: args.threads, output: args.output, overrides,
    defaults: { ...datasetNormalization(dataset), normalizationInGraph: false },
  });
  try {
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
        path: args.model, provider: extractor.provider, featureDim: extractor.featureDim,
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

