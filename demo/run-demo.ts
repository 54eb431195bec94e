/**
 * `skd demo`: the whole method on the built-in toy dataset, offline, with no other input. Gen-0 training,
 * Gen-1 distillation, ONNX export of both (verified against TensorFlow.js), and the few-shot protocol on the
 * unseen test classes for an untrained network, Gen-0 and Gen-1 on the same episodes.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../data/atomic-write.js';
import { loadDataset, datasetNormalization, datasetPadding } from '../data/datasets.js';
import { FEW_SHOT_PROTOCOL } from '../data/protocol.js';
import { exportCheckpoint } from '../export/from-checkpoint.js';
import { exportOnnx } from '../export/onnx.js';
import { packageVersion } from '../export/version.js';
import { FeatureExtractor } from '../infer/session.js';
import { evaluateFewShot } from '../infer/evaluate.js';
import { initWeights } from '../models/init.js';
import { selectBackend, type BackendChoice } from '../models/tfjs-backend.js';
import { readCheckpoint } from '../train/checkpoint.js';
import { DEFAULT_ENGINE, type EngineName, type TrainDevice } from '../train/engine.js';
import { trainGen0 } from '../train/gen0.js';
import { trainGen1 } from '../train/gen1.js';
import { checkEngineMicroBatch } from '../train/create-engine.js';
import type { TrainHooks } from '../train/progress.js';
import type { EpochRecord } from '../train/types.js';
import { DEMO_SIZES, type DemoSize, type DemoSizeName } from './sizes.js';
import { renderCurvesSvg } from './plot.js';
import { StepLosses, trainingCurvePanels } from './curves.js';
import { findingsFor, renderMarkdown, renderTable, type DemoModel, type DemoReport, type EvalRow, type TrainSummary } from './report.js';

export interface DemoOptions {
  out: string;
  size: DemoSizeName | DemoSize;
  backend?: BackendChoice;
  /** Training engine (default: ONNX Runtime) and its device. */
  engine?: EngineName;
  device?: TrainDevice;
  threads?: number;
  /** Images per micro-batch of a training step (train/ort/micro-batch.ts); unset = auto. */
  microBatch?: number;
  seed?: number;
  /** Training progress (a TTY bar or one line per epoch). */
  hooks: TrainHooks;
  /** Stage lines. */
  log: (line: string) => void;
}


function summarise(generation: 0 | 1, history: EpochRecord[]): TrainSummary {
  const seconds = history.reduce((s, r) => s + r.seconds, 0);
  const images = history.reduce((s, r) => s + r.imagesPerSecond * r.seconds, 0);
  return {
    generation, epochs: history.length, seconds, imagesPerSecond: seconds > 0 ? images / seconds : 0,
    finalLoss: history[history.length - 1]?.loss ?? NaN,
  };
}

export async function runDemo(opts: DemoOptions): Promise<DemoReport> {
  const started = performance.now();
  const size = typeof opts.size === 'string' ? DEMO_SIZES[opts.size] : opts.size;
  const seed = opts.seed ?? 0;
  const out = resolve(opts.out);
  const log = opts.log;
  // Refused before anything is written or printed.
  checkEngineMicroBatch(opts.engine ?? DEFAULT_ENGINE, opts.microBatch, size.batchSize);
  await mkdir(out, { recursive: true });
  const train = join(out, 'train');
  // A previous demo's checkpoints would be resumed or refused; the demo always starts fresh.
  await rm(train, { recursive: true, force: true });

  const engine = opts.engine ?? DEFAULT_ENGINE;
  // With the ONNX Runtime engine, TensorFlow.js only checks the exports against the checkpoints: its backend line would mislead.
  const backend = await selectBackend(opts.backend ?? 'auto', { threads: opts.threads, log: engine === 'tfjs' ? log : () => undefined });
  const common = {
    recipe: 'toy' as const, dataset: 'toy' as const, model: size.model, widths: size.widths, imageSize: 32,
    imagesPerClass: size.imagesPerClass, batchSize: size.batchSize, seed, toySeed: seed, out: train, valEvery: size.valEvery,
    valEpisodes: size.valEpisodes, maxStepsPerEpoch: size.maxStepsPerEpoch, engine, device: opts.device, threads: opts.threads,
    microBatch: opts.microBatch,
  };

  log(`[1/4] Gen-0: ${size.model} ${size.widths.join('-')} on toy (${size.imagesPerClass} images/class, 64 train classes), ${size.gen0Epochs} epochs`);
  const steps = new StepLosses();
  const hooks = steps.wrap(opts.hooks);
  const gen0 = await trainGen0({ ...common, epochs: size.gen0Epochs, lrDecayEpochs: size.gen0Decay }, hooks);
  log(`[2/4] Gen-1: self-supervised distillation from Gen-0, ${size.gen1Epochs} epochs`);
  const [gen1] = await trainGen1({ ...common, epochs: size.gen1Epochs, lrDecayEpochs: size.gen1Decay, pathT: gen0.checkpoint, generations: 1 }, hooks);

  log('[3/4] export: ONNX graphs of the untrained network, Gen-0 and Gen-1, each checked against TensorFlow.js');
  const paths: Record<DemoModel, string> = { untrained: join(out, 'untrained.onnx'), gen0: join(out, 'gen0.onnx'), gen1: join(out, 'gen1.onnx') };
  const exportCheck: DemoReport['exportCheck'] = [];
  for (const [model, ckpt] of [['gen0', gen0.checkpoint], ['gen1', gen1.checkpoint]] as const) {
    const r = await exportCheckpoint({ checkpoint: ckpt, out: paths[model], outputs: ['features', 'logits', 'rot_logits'], verify: true, verifyImages: 16, log: () => undefined });
    const diffs = r.verification?.outputs ?? [];
    exportCheck.push({ model, maxAbsDiff: Math.max(...diffs.map((d) => d.maxAbs)), maxRelDiff: Math.max(...diffs.map((d) => d.maxRel)) });
  }
  // The untrained network: Gen-0's own starting point (the same seeded initialisation).
  const g0 = await readCheckpoint(gen0.checkpoint);
  const normalization = datasetNormalization('toy');
  const untrainedBytes = exportOnnx({
    spec: g0.spec, weights: initWeights(g0.spec, seed), outputs: ['features'], normalization,
    metadata: { dataset: 'toy', trainingConfig: { note: 'untrained: the seeded initialisation of Gen-0' } },
  });
  writeFileAtomic(paths.untrained, untrainedBytes);

  log(`[4/4] few-shot evaluation on the 20 unseen test classes: ${size.episodes} episodes per setting, logistic regression on L2-normalised features`);
  const test = await loadDataset({ dataset: 'toy', split: 'test', imageSize: 32, toy: { seed, imagesPerClass: size.imagesPerClass } });
  const evaluation: EvalRow[] = [];
  for (const model of ['untrained', 'gen0', 'gen1'] as DemoModel[]) {
    const extractor = await FeatureExtractor.open(paths[model], { device: 'cpu', threads: opts.threads, log });
    try {
      for (const nShots of size.shots) {
        const r = await evaluateFewShot({
          extractor, set: test, nWays: FEW_SHOT_PROTOCOL.nWays, nShots, nQueries: FEW_SHOT_PROTOCOL.nQueries, nTestRuns: size.episodes,
          nAugSupportSamples: size.augSupport, seed, head: 'logreg', padding: datasetPadding('toy'), normalization,
        });
        evaluation.push({ model, nWays: FEW_SHOT_PROTOCOL.nWays, nShots, episodes: size.episodes, mean: r.meanPercent, halfWidth: r.ci95Percent, seconds: r.timings.totalMs / 1000 });
        log(`  ${model.padEnd(9)} ${FEW_SHOT_PROTOCOL.nWays}-way ${nShots}-shot: ${r.meanPercent.toFixed(2)} ± ${r.ci95Percent.toFixed(2)} %`);
      }
    } finally {
      await extractor.close();
    }
  }

  const svg = renderCurvesSvg(trainingCurvePanels(gen0, gen1, { trainClasses: 64, valWays: 5, steps }), 'skd demo: training curves on the toy dataset');
  const artefacts = {
    'gen0.onnx': paths.gen0, 'gen1.onnx': paths.gen1, 'untrained.onnx': paths.untrained,
    'gen0 checkpoint': gen0.checkpoint, 'gen1 checkpoint': gen1.checkpoint, 'training log': join(train, 'log.jsonl'),
    'report.json': join(out, 'report.json'), 'report.md': join(out, 'report.md'), 'curves.svg': join(out, 'curves.svg'),
  };
  const report: DemoReport = {
    tool: 'skd', version: packageVersion(), createdAt: new Date().toISOString(), backend: engine === 'tfjs' ? backend.name : 'onnxruntime', quick: size.name === 'quick',
    config: { size: size.name, seed, ...size, gen0: gen0.config, gen1: gen1.config },
    training: [summarise(0, gen0.history), summarise(1, gen1.history)],
    exportCheck, evaluation, findings: findingsFor(evaluation), artefacts, totalSeconds: (performance.now() - started) / 1000,
  };
  writeFileAtomic(join(out, 'curves.svg'), svg);
  writeFileAtomic(join(out, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  writeFileAtomic(join(out, 'report.md'), renderMarkdown(report));
  return report;
}

export { renderTable };
