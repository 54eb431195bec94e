/**
 * The library API as README shows it, imported by the package's name: open a model, extract features, fit and
 * predict a head, evaluate episodes, train.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CIFAR_NORMALIZATION } from '../data/datasets.js';
import { exportOnnx } from '../export/onnx.js';
import { evaluateFewShot } from '../infer/evaluate.js';
import { initWeights } from '../models/init.js';
import { conv4Spec } from '../models/spec.js';

const packageName = 'skd';
const skd = (await import(packageName)) as typeof import('../index.js');

test('open a model, extract features, fit and predict a head, evaluate episodes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-api-'));
  try {
    const spec = conv4Spec({ numClasses: 5, imageSize: 32, width: 8 });
    const path = join(dir, 'conv4.onnx');
    writeFileSync(path, exportOnnx({ spec, weights: initWeights(spec, 0), normalization: CIFAR_NORMALIZATION }));
    const model = await skd.openModel(path, { device: 'cpu', threads: 1 });
    try {
      assert.equal(model.featureDim, 8);
      const set = await skd.loadDataset({ dataset: 'toy', split: 'test', toy: { imagesPerClass: 20 } });
      const perImage = 32 * 32 * 3;
      // Two images of each of the first two classes as support, a third of each as the query.
      const pick = [0, 1, 20, 21];
      const pixels = new Uint8Array(pick.length * perImage);
      pick.forEach((img, i) => pixels.set(set.images.image(img), i * perImage));
      const features = await skd.extractFeatures(model, pixels, pick.length);
      for (let i = 0; i < pick.length; i++) {
        const norm = Math.hypot(...features.subarray(i * 8, (i + 1) * 8));
        assert.ok(Math.abs(norm - 1) < 1e-5, `row ${i} is L2-normalised (${norm})`);
      }
      const head = skd.createHead('logreg');
      head.fit(features, 4, 8, Int32Array.from([0, 0, 1, 1]), 2);
      const proba = head.predictProba(features, 4);
      assert.equal(proba.length, 8);
      assert.deepEqual(Array.from(skd.headFromJSON(head.toJSON()).predict(features, 4)), Array.from(head.predict(features, 4)));

      const report = await skd.evaluate(model, set, { nTestRuns: 5, nAugSupportSamples: 2 });
      assert.equal(report.accuracies.length, 5);
      assert.equal(report.config.nWays, skd.FEW_SHOT_PROTOCOL.nWays);
      assert.equal(report.config.nQueries, skd.FEW_SHOT_PROTOCOL.nQueries);
      const direct = await evaluateFewShot({
        extractor: model, set, nWays: 5, nShots: 1, nQueries: 15, nTestRuns: 5, nAugSupportSamples: 2, seed: 0, head: 'logreg',
        padding: 4, normalization: CIFAR_NORMALIZATION,
      });
      assert.deepEqual(report.accuracies, direct.accuracies, 'evaluate is skd eval\'s evaluator with the protocol\'s defaults');
    } finally {
      await model.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('train a Gen-0 model through the library', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-api-train-'));
  try {
    const [result] = await skd.train(0, {
      dataset: 'toy', imageSize: 16, imagesPerClass: 2, model: 'conv4', widths: [8], batchSize: 32, epochs: 1, maxStepsPerEpoch: 1,
      out: dir, backend: 'cpu',
    });
    assert.equal(result!.generation, 0);
    assert.equal(result!.history.length, 1);
    assert.ok(Number.isFinite(result!.history[0]!.loss));
    assert.equal(result!.checkpoint, join(dir, 'gen0.safetensors'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
