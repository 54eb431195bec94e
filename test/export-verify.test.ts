import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { CIFAR_NORMALIZATION, IMAGENET_NORMALIZATION, imageSetFromPickle } from '../data/datasets.js';
import type { FloatTensor } from '../data/types.js';
import { exportOnnx } from '../export/onnx.js';
import { verifyExport } from '../export/verify.js';
import { initWeights } from '../models/init.js';
import { conv4Spec, resnet12Spec, type NamedWeights } from '../models/spec.js';
import { FIXTURES } from './helpers/run-skd.js';

/** The first `count` images of a fixture pickle as NHWC pixels / 255. */
function fixtureImages(dataset: string, file: string, count: number): FloatTensor {
  const set = imageSetFromPickle(join(FIXTURES, 'datasets', dataset, file), dataset, 'test');
  const n = Math.min(count, set.count);
  const perImage = set.height * set.width * set.channels;
  const data = new Float32Array(n * perImage);
  for (let i = 0; i < data.length; i++) data[i] = set.images.all()[i] / 255;
  return { data, shape: [n, set.height, set.width, set.channels] };
}

/** Trained-looking batch-norm statistics, so that folding is exercised with non-trivial values. */
function perturbBatchNorm(weights: NamedWeights, seed: number): NamedWeights {
  let s = seed;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const out: NamedWeights = new Map();
  for (const [name, w] of weights) {
    const data = Float32Array.from(w.data);
    if (/\.(bn\d|downsample\.1)\.|^layer\d\.1\./.test(name)) {
      for (let i = 0; i < data.length; i++) {
        if (name.endsWith('running_var')) data[i] = 0.2 + 2 * next();
        else if (name.endsWith('running_mean')) data[i] = next() - 0.5;
        else if (name.endsWith('.weight')) data[i] = 0.5 + next();
        else if (name.endsWith('.bias')) data[i] = 0.4 * (next() - 0.5);
      }
    }
    out.set(name, { data, shape: [...w.shape] });
  }
  return out;
}

test('ResNet-12 (narrow): ONNX Runtime agrees with TensorFlow.js on random and CIFAR-FS images', async () => {
  const spec = resnet12Spec({ widths: [8, 16, 32, 64], numClasses: 6 });
  const weights = perturbBatchNorm(initWeights(spec, 11), 5);
  const onnx = exportOnnx({ spec, weights, outputs: ['features', 'logits', 'rot_logits'], normalization: CIFAR_NORMALIZATION });
  const report = await verifyExport({ spec, weights, onnx, images: fixtureImages('CIFAR-FS', 'test.pickle', 8), backend: 'cpu' });
  assert.equal(report.passed, true);
  assert.equal(report.realImages, 8);
  assert.deepEqual(report.outputs.map((o) => o.output), ['features', 'logits', 'rot_logits']);
  for (const o of report.outputs) {
    assert.ok(o.maxRel <= 1e-4 && o.scale > 0, JSON.stringify(o));
  }
});

test('ResNet-12 with NHWC input and normalisation in the graph verifies too', async () => {
  const spec = resnet12Spec({ widths: [8, 16, 32, 64], numClasses: 6 });
  const weights = perturbBatchNorm(initWeights(spec, 12), 6);
  const onnx = exportOnnx({ spec, weights, layout: 'nhwc', bakeNormalization: true, normalization: CIFAR_NORMALIZATION });
  const report = await verifyExport({ spec, weights, onnx, images: fixtureImages('CIFAR-FS', 'val.pickle', 4), randomImages: 4, backend: 'cpu' });
  assert.ok(report.passed && report.maxRel <= 1e-4, JSON.stringify(report));
});

test('Conv-4 at 84x84: ONNX Runtime agrees with TensorFlow.js on random and miniImageNet images', async () => {
  const spec = conv4Spec({ numClasses: 5, width: 16, imageSize: 84 });
  const weights = perturbBatchNorm(initWeights(spec, 13), 7);
  const onnx = exportOnnx({ spec, weights, outputs: ['logits'], normalization: IMAGENET_NORMALIZATION });
  const report = await verifyExport({
    spec, weights, onnx, images: fixtureImages('miniImageNet', 'miniImageNet_category_split_test.pickle', 4), randomImages: 4, backend: 'cpu',
  });
  assert.ok(report.passed, JSON.stringify(report));
  assert.deepEqual(report.outputs.map((o) => o.output), ['features', 'logits']);
});

test('a graph that does not match the weights fails verification with the differences', async () => {
  const spec = conv4Spec({ numClasses: 5, width: 8 });
  const weights = initWeights(spec, 14);
  const tampered: NamedWeights = new Map(weights);
  const v = weights.get('layer3.1.running_var')!;
  tampered.set('layer3.1.running_var', { data: v.data.map((x) => x * 1.01), shape: v.shape });
  const onnx = exportOnnx({ spec, weights: tampered, normalization: CIFAR_NORMALIZATION });
  const report = await verifyExport({ spec, weights, onnx, randomImages: 4, backend: 'cpu', throwOnFailure: false });
  assert.equal(report.passed, false);
  assert.ok(report.outputs[0].maxRel > 1e-4);
  await assert.rejects(verifyExport({ spec, weights, onnx, randomImages: 4, backend: 'cpu' }),
    { name: 'UserError', message: /verification failed: .*features max abs .* max rel/ });
});
