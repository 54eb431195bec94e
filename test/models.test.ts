import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { FIXTURES } from './helpers/run-skd.js';
import { selectBackend } from '../models/tfjs-backend.js';
import { conv4Spec, resnet12Spec, specParameters, type NamedWeights } from '../models/spec.js';
import { TfModel } from '../models/tfjs.js';
import { initWeights } from '../models/init.js';
import { loadReferenceStateDict } from '../models/reference.js';

await selectBackend('wasm', { log: () => {} });

interface ReferenceFixture {
  state_dict: Record<string, unknown>;
  input_nchw: number[][][][];
  features: number[][];
  logits: number[][];
  rot_logits: number[][];
  widths: number[];
  n_cls: number;
}

function assertRelClose(actual: Float32Array | number[], expected: number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    if (diff > tol * Math.max(1, Math.abs(expected[i]))) assert.fail(`${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

test('reference weights reproduce the PyTorch features, logits and rotation logits (eval mode)', () => {
  const fx = JSON.parse(readFileSync(join(FIXTURES, 'models', 'resnet12_w8-16-32-64_reference.json'), 'utf8')) as ReferenceFixture;
  assert.deepEqual(fx.widths, [8, 16, 32, 64]);
  const model = new TfModel(resnet12Spec({ widths: fx.widths, numClasses: fx.n_cls }), loadReferenceStateDict(fx));
  const [n, c, h, w] = [fx.input_nchw.length, fx.input_nchw[0].length, fx.input_nchw[0][0].length, fx.input_nchw[0][0][0].length];
  tf.tidy(() => {
    const x = tf.transpose(tf.tensor4d(fx.input_nchw.flat(3), [n, c, h, w]), [0, 2, 3, 1]) as tf.Tensor4D;
    const out = model.forward(x, false);
    assertRelClose(out.features.dataSync() as Float32Array, fx.features.flat(), 1e-4, 'features');
    assertRelClose(out.logits.dataSync() as Float32Array, fx.logits.flat(), 1e-4, 'logits');
    assertRelClose(out.rotLogits.dataSync() as Float32Array, fx.rot_logits.flat(), 1e-4, 'rot_logits');
  });
  assert.equal(model.dropBlockCalls, 0, 'eval calls do not advance the DropBlock schedule');
  model.dispose();
});

test('conv4 forward shapes at 32x32 and 84x84', () => {
  for (const size of [32, 84]) {
    const spec = conv4Spec({ numClasses: 5, imageSize: size, width: 8 });
    const model = new TfModel(spec, initWeights(spec, 3));
    tf.tidy(() => {
      const out = model.forward(tf.randomNormal([2, size, size, 3]) as tf.Tensor4D, false);
      assert.deepEqual(out.features.shape, [2, 8]);
      assert.deepEqual(out.logits.shape, [2, 5]);
      assert.deepEqual(out.rotLogits.shape, [2, 4]);
    });
    model.dispose();
  }
});

test('training-mode batch-norm uses batch statistics and updates running stats as PyTorch', () => {
  const spec = conv4Spec({ numClasses: 3, imageSize: 16, width: 4 });
  const weights = initWeights(spec, 5);
  // Non-trivial starting running statistics, to check the momentum blend.
  weights.get('layer1.1.running_mean')!.data.fill(0.5);
  weights.get('layer1.1.running_var')!.data.fill(2);
  const model = new TfModel(spec, weights);
  const x = tf.randomNormal([3, 16, 16, 3], 0, 1, 'float32', 21) as tf.Tensor4D;
  // Expected batch statistics of the first conv's output, computed independently in plain JS.
  const conv = tf.tidy(() => tf.add(tf.conv2d(x, tf.transpose(tf.tensor4d(weights.get('layer1.0.weight')!.data, [4, 3, 3, 3]), [2, 3, 1, 0]) as tf.Tensor4D, 1, 1), tf.tensor1d(weights.get('layer1.0.bias')!.data)));
  const data = conv.dataSync();
  const count = data.length / 4;
  const mean = [0, 0, 0, 0];
  for (let i = 0; i < data.length; i++) mean[i % 4] += data[i] / count;
  const sq = [0, 0, 0, 0];
  for (let i = 0; i < data.length; i++) sq[i % 4] += (data[i] - mean[i % 4]) ** 2;
  const unbiased = sq.map((s) => s / (count - 1));
  tf.tidy(() => { model.forward(x, true); });
  const after = model.getWeights();
  assertRelClose(after.get('layer1.1.running_mean')!.data, mean.map((m) => 0.9 * 0.5 + 0.1 * m), 1e-5, 'running_mean');
  assertRelClose(after.get('layer1.1.running_var')!.data, unbiased.map((v) => 0.9 * 2 + 0.1 * v), 1e-5, 'running_var');
  // The layer's output is normalised with the biased variance: per channel mean 0 and E[y^2] = var/(var+eps).
  const biased = sq.map((s) => s / count);
  const gamma = weights.get('layer1.1.weight')!.data;
  const beta = weights.get('layer1.1.bias')!.data;
  const expected = Array.from(data, (v, i) => ((v - mean[i % 4]) / Math.sqrt(biased[i % 4] + 1e-5)) * gamma[i % 4] + beta[i % 4]);
  const probe = new TfModel({ ...spec, nodes: spec.nodes.slice(0, 2), outputs: { features: 'layer1.1', logits: 'layer1.1', rot_logits: 'layer1.1' } }, pick(weights, 'layer1.0', 'layer1.1'));
  tf.tidy(() => assertRelClose(probe.forward(x, true).features.dataSync() as Float32Array, expected, 1e-4, 'normalised'));
  // Eval mode leaves the running statistics alone.
  tf.tidy(() => { model.forward(x, false); });
  assert.deepEqual(model.getWeights().get('layer1.1.running_var')!.data, after.get('layer1.1.running_var')!.data);
  tf.dispose([x, conv]);
  model.dispose();
  probe.dispose();
});

function pick(w: NamedWeights, ...owners: string[]): NamedWeights {
  return new Map([...w].filter(([name]) => owners.some((o) => name.startsWith(o + '.'))));
}

test('getWeights/setWeights round-trip in PyTorch layout; mismatches are listed', () => {
  const spec = resnet12Spec({ widths: [4, 6, 8, 10], numClasses: 7 });
  const first = initWeights(spec, 1);
  const model = new TfModel(spec, first);
  const got = model.getWeights();
  assert.deepEqual([...got.keys()], specParameters(spec).map((p) => p.name));
  for (const [name, w] of first) {
    assert.deepEqual(got.get(name)!.shape, w.shape, name);
    assert.deepEqual(got.get(name)!.data, w.data, name);
  }
  const second = initWeights(spec, 2);
  model.setWeights(second);
  for (const [name, w] of model.getWeights()) assert.deepEqual(w.data, second.get(name)!.data, name);
  // returned arrays are copies
  model.getWeights().get('classifier.bias')!.data.fill(99);
  assert.notEqual(model.getWeights().get('classifier.bias')!.data[0], 99);
  // trainable variables: conv/linear/BN affine, never running statistics
  const names = model.trainableNames();
  assert.equal(names.length, model.trainableVariables().length);
  assert.ok(names.includes('layer1.conv1.weight') && names.includes('layer1.bn1.bias') && names.includes('rot_classifier.bias'));
  assert.ok(!names.some((n) => n.includes('running')));
  const round = model.toNamedWeights(model.trainableVariables());
  assert.deepEqual(round.get('layer2.conv2.weight')!.data, second.get('layer2.conv2.weight')!.data);
  const back = model.fromNamedWeights(round);
  assert.deepEqual(back[0].dataSync(), model.trainableVariables()[0].dataSync());
  tf.dispose(back);

  const bad: NamedWeights = new Map(second);
  bad.delete('layer1.bn1.running_var');
  bad.set('layer3.conv1.weight', { data: new Float32Array(8 * 6 * 3 * 3 - 1), shape: [8, 6, 3, 2] });
  bad.set('fc.weight', { data: new Float32Array(1), shape: [1] });
  assert.throws(() => model.setWeights(bad), (err: Error) => {
    assert.match(err.message, /missing: layer1\.bn1\.running_var/);
    assert.match(err.message, /unexpected: fc\.weight/);
    assert.match(err.message, /layer3\.conv1\.weight: shape \[8, 6, 3, 2\], expected \[8, 6, 3, 3\]/);
    return true;
  });
  model.dispose();
});

test('initial weights: seeded, Kaiming fan_out for convs, PyTorch default for Linear, BN identity', () => {
  const spec = resnet12Spec({ widths: [16, 32, 64, 128], numClasses: 20 });
  const a = initWeights(spec, 7);
  const b = initWeights(spec, 7);
  const c = initWeights(spec, 8);
  assert.deepEqual(a.get('layer2.conv1.weight')!.data, b.get('layer2.conv1.weight')!.data);
  assert.notDeepEqual(a.get('layer2.conv1.weight')!.data, c.get('layer2.conv1.weight')!.data);
  const w = a.get('layer4.conv2.weight')!.data; // [128, 128, 3, 3]: fan_out 1152
  const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
  assert.ok(Math.abs(std - Math.sqrt(2 / 1152)) / Math.sqrt(2 / 1152) < 0.02, `std ${std}`);
  const lin = a.get('classifier.weight')!.data; // fan_in 128
  assert.ok(lin.every((v) => Math.abs(v) <= 1 / Math.sqrt(128)));
  assert.ok(Math.max(...lin) > 0.8 / Math.sqrt(128));
  assert.ok(a.get('rot_classifier.bias')!.data.every((v) => Math.abs(v) <= 1 / Math.sqrt(20)));
  assert.ok(a.get('layer1.bn1.weight')!.data.every((v) => v === 1));
  assert.ok(a.get('layer1.bn1.bias')!.data.every((v) => v === 0));
  assert.ok(a.get('layer1.bn1.running_var')!.data.every((v) => v === 1));
});
