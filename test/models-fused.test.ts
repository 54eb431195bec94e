import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../models/tfjs-backend.js';
import { conv4Spec, resnet12Spec, type ModelSpec } from '../models/spec.js';
import { TfModel } from '../models/tfjs.js';
import { initWeights } from '../models/init.js';

/** Loss value, gradients (PyTorch layout) and updated running statistics after one training step. */
function step(spec: ModelSpec, fuse: boolean, x: tf.Tensor4D) {
  const weights = initWeights(spec, 4);
  // Non-trivial BN affine parameters, so that the BN backward is exercised beyond gamma = 1, beta = 0.
  for (const [name, w] of weights) {
    if (/(bn\d|downsample\.1|layer\d\.1)\.weight$/.test(name)) w.data.forEach((_, i) => (w.data[i] = 0.5 + ((i * 37) % 11) / 10));
    if (/(bn\d|downsample\.1|layer\d\.1)\.bias$/.test(name)) w.data.forEach((_, i) => (w.data[i] = ((i * 13) % 7) / 10 - 0.3));
  }
  const model = new TfModel(spec, weights, { fuse, dropoutSeed: 3 });
  const vars = model.trainableVariables();
  let loss = NaN;
  let grads = new Map() as ReturnType<TfModel['getWeights']>;
  tf.tidy(() => {
    const r = tf.variableGrads(() => {
      const out = model.forward(x, true);
      return tf.add(tf.sum(tf.mul(out.logits, tf.reshape(tf.linspace(-1, 1, out.logits.size), out.logits.shape))), tf.sum(tf.square(out.rotLogits)));
    }, vars);
    loss = r.value.dataSync()[0];
    grads = model.toNamedWeights(vars.map((v) => r.grads[v.name]));
  });
  const after = model.getWeights();
  model.dispose();
  return { loss, grads, after };
}

function assertClose(a: Float32Array, b: Float32Array, what: string, tol = 1e-4): void {
  let scale = 1e-2; // gradients that are mathematically zero (a conv bias before BN) differ by rounding only
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < b.length; i++) {
    if (Math.abs(a[i] - b[i]) > tol * scale) assert.fail(`${what}[${i}]: ${a[i]} vs ${b[i]} (scale ${scale})`);
  }
}

for (const backend of ['wasm', 'cpu'] as const) {
  test(`fused conv-BN-activation training step equals the op-by-op one (${backend})`, async () => {
    await selectBackend(backend, { log: () => {} });
    const cases: [string, ModelSpec, number][] = [
      ['resnet12', resnet12Spec({ widths: [4, 6, 8, 10], numClasses: 5 }), 32],
      ['conv4 (conv bias, ReLU)', conv4Spec({ numClasses: 3, imageSize: 16, width: 6 }), 16],
    ];
    for (const [label, spec, size] of cases) {
      const x = tf.randomNormal([6, size, size, 3], 0, 1, 'float32', 8) as tf.Tensor4D;
      const fused = step(spec, true, x);
      const plain = step(spec, false, x);
      x.dispose();
      assert.ok(Math.abs(fused.loss - plain.loss) <= 1e-4 * Math.max(1, Math.abs(plain.loss)), `${label} loss ${fused.loss} vs ${plain.loss}`);
      for (const [name, g] of plain.grads) assertClose(fused.grads.get(name)!.data, g.data, `${label} grad ${name}`);
      for (const [name, w] of plain.after) assertClose(fused.after.get(name)!.data, w.data, `${label} ${name}`);
    }
  });
}
