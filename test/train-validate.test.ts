import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../models/tfjs-backend.js';
import { datasetNormalization } from '../data/datasets.js';
import { generateToy } from '../data/toy.js';
import { conv4Spec } from '../models/spec.js';
import { initWeights } from '../models/init.js';
import { TfModel } from '../models/tfjs.js';
import { evaluateFewShot, type FeatureSource } from '../infer/evaluate.js';
import { createEngine } from '../train/create-engine.js';
import { fewShotValidate, modelFeatureSource } from '../train/validate.js';

await selectBackend('wasm', { log: () => {} });

const normalization = datasetNormalization('toy');
const val = generateToy({ split: 'val', imagesPerClass: 20, seed: 0 });
const spec = conv4Spec({ numClasses: 64, imageSize: 32, width: 8 });
const model = new TfModel(spec, initWeights(spec, 7));
const source = modelFeatureSource(model, 32);

/** Features straight from the network, one forward call per batch the evaluator asks for. */
const direct: FeatureSource = {
  featureDim: spec.featureDim,
  preprocessing: { size: 32 },
  async extract(images, count, opts) {
    const batch = opts?.batchSize ?? count;
    const out = new Float32Array(count * spec.featureDim);
    for (let s = 0; s < count; s += batch) {
      const m = Math.min(batch, count - s);
      const f = tf.tidy(() => model.forward(tf.tensor4d(images.slice(s * 3072, (s + m) * 3072), [m, 32, 32, 3]), false).features);
      out.set(f.dataSync() as Float32Array, s * spec.featureDim);
      f.dispose();
    }
    return out;
  },
};

test('validation equals evaluateFewShot with the proto head on the same episodes', async () => {
  const record = await fewShotValidate(source, val, { ways: 5, shots: 1, queries: 15, episodes: 12, seed: 0, normalization });
  const report = await evaluateFewShot({
    extractor: direct, set: val, nWays: 5, nShots: 1, nQueries: 15, nTestRuns: 12, nAugSupportSamples: 1, seed: 0,
    head: 'proto', padding: 4, normalization, batchSize: 128,
  });
  assert.equal(record.episodes, 12);
  assert.equal(record.queries, 15);
  assert.equal(record.accuracy, report.meanPercent);
  assert.equal(record.ci95, report.ci95Percent);
  assert.ok(report.ci95Percent > 0, 'episodes differ, so the interval has a width');
  // A different seed draws other episodes: the figures are not a constant.
  const other = await fewShotValidate(source, val, { ways: 5, shots: 1, queries: 15, episodes: 12, seed: 100, normalization });
  assert.notEqual(other.accuracy, record.accuracy);
});

test('validation of one episode has an undefined half-width, not zero; small classes reduce the queries', async () => {
  const one = await fewShotValidate(source, val, { ways: 5, shots: 1, queries: 15, episodes: 1, seed: 0, normalization });
  assert.ok(Number.isNaN(one.ci95));
  const few = await fewShotValidate(source, val, { ways: 5, shots: 5, queries: 30, episodes: 2, seed: 0, normalization });
  assert.equal(few.queries, 15, '20 images per class: 5 support, 15 queries');
  await assert.rejects(fewShotValidate(source, val, { ways: 17, shots: 1, queries: 15, episodes: 1, seed: 0, normalization }), /needs 17 classes in the val split/);
});

test('the ONNX Runtime engine validates through a session of the exported graph: same features and accuracy as the TensorFlow.js model', async () => {
  const weights = initWeights(spec, 7);
  const engine = await createEngine({
    spec, weights, batchSize: 8, loss: { kind: 'gen0', gamma: 2 }, sgd: { momentum: 0.9, weightDecay: 5e-4 }, dropoutSeed: 1,
  }, { engine: 'ort', device: 'cpu', threads: 1 });
  try {
    const images = Float32Array.from(val.images.chunks[0].subarray(0, 10 * 3072), (v) => (v / 255 - 0.5) * 4);
    const want = await source.extract(images, 10, { batchSize: 4 });
    const opts = { ways: 5, shots: 1, queries: 15, episodes: 6, seed: 0, normalization };
    const viaOrt = await engine.withFeatureSource(32, async (ortSource) => {
      const got = await ortSource.extract(images, 10, { batchSize: 3 });
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
      assert.ok(worst <= 1e-4 * Math.max(...want.map(Math.abs)), `features differ by ${worst}`);
      return fewShotValidate(ortSource, val, opts);
    });
    assert.deepEqual(viaOrt, await fewShotValidate(source, val, opts));
  } finally {
    await engine.dispose();
  }
});
