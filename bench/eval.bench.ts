/**
 * Few-shot evaluation speed: `evaluateFewShot` (the code behind `skd eval`) on a CIFAR-FS-sized test split
 * (20 classes x 600 random images at 32x32) with a full-width ResNet-12 (64-160-320-640, random weights, exported
 * to ONNX), 600 episodes of 5-way 1-shot and 5-shot, 15 queries, 5 support augmentations, logistic-regression head,
 * onnxruntime-node on CPU. SKD_BENCH_EVAL_EPISODES overrides the episode count and SKD_BENCH_EVAL_SHOTS the shot
 * counts (for example "1"), for a quicker look.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CIFAR_NORMALIZATION } from '../data/datasets.js';
import { FEW_SHOT_PROTOCOL } from '../data/protocol.js';
import { Rng } from '../data/rng.js';
import type { ImageSet } from '../data/types.js';
import { exportOnnx } from '../export/onnx.js';
import { evaluateFewShot } from '../infer/evaluate.js';
import { FeatureExtractor } from '../infer/session.js';
import { initWeights } from '../models/init.js';
import { resnet12Spec } from '../models/spec.js';
import { ImageStore } from '../data/pixels.js';

export const describe =
  'skd eval protocol on a generated CIFAR-FS-sized test split (20 classes x 600 at 32x32, random pixels) with a ' +
  `full-width ResNet-12 (random weights) in onnxruntime-node (CPU, default threads): wall time of ${FEW_SHOT_PROTOCOL.nTestRuns} episodes ` +
  `${FEW_SHOT_PROTOCOL.nWays}-way 1-shot and 5-shot, ${FEW_SHOT_PROTOCOL.nQueries} queries, ${FEW_SHOT_PROTOCOL.nAugSupportSamples} support augmentations, logreg head; images encoded and images/s; ` +
  'reference_reencode_images = what re-encoding every episode (as the reference does) would encode; peak RSS';

function generatedSplit(): ImageSet {
  const classes = 20, perClass = 600, size = 32;
  const count = classes * perClass;
  const images = new Uint8Array(count * size * size * 3);
  const rng = new Rng(0);
  for (let i = 0; i < images.length; i += 4) {
    const w = rng.nextUint32();
    images[i] = w & 255; images[i + 1] = (w >>> 8) & 255; images[i + 2] = (w >>> 16) & 255; images[i + 3] = w >>> 24;
  }
  const labels = Int32Array.from({ length: count }, (_, i) => Math.floor(i / perClass));
  const classNames = Array.from({ length: classes }, (_, c) => String(c));
  return { name: 'CIFAR-FS', split: 'test', images: ImageStore.fromBytes(images, size * size * 3), count, height: size, width: size, channels: 3, labels, classNames, originalIds: classNames.map(Number) };
}

export async function run(): Promise<Record<string, unknown>> {
  const { nWays, nQueries, nAugSupportSamples } = FEW_SHOT_PROTOCOL;
  const episodes = Number(process.env.SKD_BENCH_EVAL_EPISODES ?? FEW_SHOT_PROTOCOL.nTestRuns);
  const dir = mkdtempSync(join(tmpdir(), 'skd-bench-eval-'));
  let peakRss = process.memoryUsage().rss;
  const sample = () => { peakRss = Math.max(peakRss, process.memoryUsage().rss); };
  const sampler = setInterval(sample, 250);
  try {
    const spec = resnet12Spec({ numClasses: 64, imageSize: 32 });
    const modelPath = join(dir, 'resnet12.onnx');
    writeFileSync(modelPath, exportOnnx({ spec, weights: initWeights(spec, 0), normalization: CIFAR_NORMALIZATION }));
    const set = generatedSplit();
    const extractor = await FeatureExtractor.open(modelPath, { device: 'cpu' });
    const results: Record<string, unknown> = {
      episodes, feature_dim: extractor.featureDim, load_average_at_start: loadavg().map((v) => +v.toFixed(2)),
    };
    try {
      const shots = (process.env.SKD_BENCH_EVAL_SHOTS ?? '1,5').split(',').map(Number);
      for (const nShots of shots) {
        process.stderr.write(`  ${nWays}-way ${nShots}-shot, ${episodes} episodes ...\n`);
        const started = performance.now();
        const report = await evaluateFewShot({
          extractor, set, nWays, nShots, nQueries, nTestRuns: episodes, nAugSupportSamples, seed: FEW_SHOT_PROTOCOL.seed, head: 'logreg',
          padding: 4, normalization: extractor.inputNormalization(),
          onEpisode: (i) => { sample(); if ((i + 1) % 100 === 0) process.stderr.write(`    episode ${i + 1}: ${((performance.now() - started) / 1000).toFixed(0)} s\n`); },
        });
        const wall = (performance.now() - started) / 1000;
        const t = report.timings;
        const encoded = report.queryImagesEncoded + report.supportImagesEncoded;
        results[`${nShots}shot`] = {
          wall_s: +wall.toFixed(1),
          mean_percent: +report.meanPercent.toFixed(2),
          ci95_percent: +report.ci95Percent.toFixed(2),
          query_images_encoded: report.queryImagesEncoded,
          support_images_encoded: report.supportImagesEncoded,
          reference_reencode_images: episodes * nWays * (nShots * nAugSupportSamples + nQueries),
          images_per_s: +(encoded / ((t.queryFeaturesMs + t.supportFeaturesMs) / 1000)).toFixed(1),
          query_features_s: +(t.queryFeaturesMs / 1000).toFixed(1),
          support_augment_s: +(t.supportAugmentMs / 1000).toFixed(1),
          support_features_s: +(t.supportFeaturesMs / 1000).toFixed(1),
          head_s: +(t.headMs / 1000).toFixed(2),
          head_ms_per_episode: +t.headMsPerEpisode.toFixed(2),
          head_fit_ms_per_episode: +t.headFitMsPerEpisode.toFixed(2),
          load_average_after: loadavg().map((v) => +v.toFixed(2)),
        };
      }
    } finally {
      await extractor.close();
    }
    sample();
    results.peak_rss_mib = +(peakRss / 2 ** 20).toFixed(0);
    results.max_rss_mib_kernel = +(process.resourceUsage().maxRSS / 1024).toFixed(0);
    return results;
  } finally {
    clearInterval(sampler);
    rmSync(dir, { recursive: true, force: true });
  }
}
