import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, runSkd } from './helpers/run-skd.js';
import { datasetNormalization, loadDataset } from '../data/datasets.js';
import { evaluateFewShot, type EvalOptions, type FeatureSource } from '../infer/evaluate.js';
import { FeatureExtractor } from '../infer/session.js';

const MODEL = join(FIXTURES, 'models', 'resnet12_w8-16-32-64_pytorch.onnx');
const DATA_ROOT = join(FIXTURES, 'datasets');
const NORM = datasetNormalization('CIFAR-FS');

/** Counts the images that go through the network. */
function counting(inner: FeatureSource): FeatureSource & { images: number } {
  const wrapper = {
    images: 0,
    featureDim: inner.featureDim,
    preprocessing: inner.preprocessing,
    extract(images: Float32Array, count: number, opts?: { batchSize?: number }) { wrapper.images += count; return inner.extract(images, count, opts); },
  };
  return wrapper;
}

test('evaluation is reproducible, independent of batching, and encodes each query image once', async () => {
  const set = await loadDataset({ dataset: 'CIFAR-FS', dataRoot: DATA_ROOT, split: 'test' });
  const fx = await FeatureExtractor.open(MODEL, { device: 'cpu', threads: 1, defaults: NORM });
  try {
    const base: Omit<EvalOptions, 'extractor'> = {
      set, nWays: 5, nShots: 1, nQueries: 15, nTestRuns: 12, nAugSupportSamples: 2, seed: 3, head: 'logreg', padding: 4, normalization: NORM,
    };
    const counter = counting(fx);
    const seen: number[] = [];
    const a = await evaluateFewShot({ ...base, extractor: counter, onEpisode: (i) => seen.push(i) });
    assert.equal(a.accuracies.length, 12);
    assert.deepEqual(seen, Array.from({ length: 12 }, (_, i) => i));
    assert.ok(a.queryImagesEncoded <= set.count, 'each query image at most once');
    assert.equal(a.supportImagesEncoded, 12 * 5 * 1 * 2);
    assert.equal(counter.images, a.queryImagesEncoded + a.supportImagesEncoded);
    for (const acc of a.accuracies) assert.ok(acc >= 0 && acc <= 1 && Number.isInteger(Math.round(acc * 75 * 1e6) / 1e6));
    assert.ok(Number.isFinite(a.meanPercent) && Number.isFinite(a.ci95Percent));

    const b = await evaluateFewShot({ ...base, extractor: fx, supportBatchImages: 10, batchSize: 7 });
    assert.deepEqual(b.accuracies, a.accuracies, 'same seed, different batching: same per-episode accuracies');

    const other = await evaluateFewShot({ ...base, extractor: fx, seed: 4 });
    assert.notDeepEqual(other.accuracies, a.accuracies, 'another seed draws other episodes');

    // The reference tiles the support only when n_aug > 1: 0 and 1 both mean one augmented copy.
    const zero = await evaluateFewShot({ ...base, extractor: fx, nAugSupportSamples: 0 });
    const one = await evaluateFewShot({ ...base, extractor: fx, nAugSupportSamples: 1 });
    assert.deepEqual(zero.accuracies, one.accuracies);
    assert.equal(zero.config.supportCopies, 1);

    for (const head of ['proto', 'nn'] as const) {
      const r = await evaluateFewShot({ ...base, extractor: fx, head });
      assert.equal(r.accuracies.length, 12);
    }
  } finally {
    await fx.close();
  }
});

const FOREIGN = ['--model', MODEL, '--dataset', 'CIFAR-FS', '--data-root', DATA_ROOT, '--layout', 'nchw', '--size', '32', '--output', 'features', '--device', 'cpu', '--threads', '1'];

test('skd eval runs end to end on the fixture CIFAR-FS split: one-line result, JSON report, report file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-eval-'));
  try {
    const out = join(dir, 'report.json');
    const r = await runSkd(['eval', ...FOREIGN, '--n_ways', '5', '--n-shots', '5', '--n_queries', '15', '--n_test_runs', '8', '--n_aug_support_samples', '2', '--seed', '0', '--json', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), report);
    assert.equal(report.accuracies.length, 8);
    assert.equal(report.config.nShots, 5);
    assert.equal(report.config.split, 'test');
    assert.equal(report.model.featureDim, 64);
    assert.deepEqual(report.model.preprocessing.mean, NORM.mean, 'a graph without metadata gets the dataset normalisation');
    assert.match(r.stderr, /^5-way 5-shot: \d+\.\d\d ± \d+\.\d\d % \(8 episodes, logreg\)$/m);
    assert.equal(report.meanPercent.toFixed(2), /^5-way 5-shot: (\d+\.\d\d) ±/m.exec(r.stderr)![1]);

    const again = await runSkd(['eval', ...FOREIGN, '--n-test-runs', '8', '--n-aug-support-samples', '2', '--n-shots', '5']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.trim(), /^5-way 5-shot.*$/m.exec(r.stderr)![0], 'same flags, same result line');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('skd eval rejects bad input with one clear line before any work', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-eval-'));
  try {
    const out = join(dir, 'report.json');
    const cases: [string[], RegExp][] = [
      [['--n_ways', '7'], /7-way episodes need at least 7 classes, but the set has 6/],
      [['--n_shots', '10'], /has 20 images, but 10-shot episodes with 15 queries need 25 per class/],
      [['--output', 'embedding'], /no output 'embedding'; its outputs are: features, logits, rot_logits/],
      [['--head', 'svm'], /unknown head "svm"/],
      [['--mean', '0.5,0.5'], /--mean expects 3 numbers/],
      [['--n_test_runs', '0'], /--n_test_runs must be an integer >= 1/],
      [['--split', 'nope'], /nope/],
    ];
    for (const [extra, message] of cases) {
      const r = await runSkd(['eval', ...FOREIGN, '--out', out, ...extra]);
      assert.notEqual(r.code, 0, `${extra.join(' ')} should fail`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.equal(r.stdout, '');
      assert.ok(!existsSync(out), 'no report written');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
