import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import { selectBackend } from '../models/tfjs-backend.js';
import { UserError } from '../data/errors.js';
import { resnet12Spec } from '../models/spec.js';
import { initWeights } from '../models/init.js';
import { TfModel } from '../models/tfjs.js';

test('auto falls back to wasm when the native bindings are not installed, and says so in one line', async () => {
  const lines: string[] = [];
  const chosen = await selectBackend('auto', { log: (l) => lines.push(l) });
  assert.equal(chosen.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^backend: wasm/);
  // gradients are registered as part of selection
  const g = tf.grad((x: tf.Tensor) => tf.sum(tf.square(x)))(tf.tensor1d([1, 2]));
  assert.deepEqual(Array.from(g.dataSync()), [2, 4]);
});

test('an explicitly chosen native backend that is not installed is a UserError naming the package', async () => {
  for (const [choice, pkg] of [['tensorflow', '@tensorflow/tfjs-node'], ['tensorflow-gpu', '@tensorflow/tfjs-node-gpu']] as const) {
    await assert.rejects(selectBackend(choice, { log: () => {} }), (err: unknown) => {
      assert.ok(err instanceof UserError);
      assert.ok(err.message.includes(`npm install ${pkg}`), err.message);
      return true;
    });
  }
});

test('an unknown backend name is a UserError listing the choices', async () => {
  await assert.rejects(selectBackend('webgpu' as never, { log: () => {} }), /expected one of auto, tensorflow-gpu, tensorflow, wasm, cpu/);
});

test('cpu and wasm can be chosen explicitly', async () => {
  assert.equal((await selectBackend('cpu', { log: () => {} })).name, 'cpu');
  assert.equal((await selectBackend('wasm', { log: () => {} })).name, 'wasm');
});

test('wasm with 2 threads runs the threaded binary on 2 XNNPACK threads and matches 1 thread', async () => {
  const spec = resnet12Spec({ widths: [8, 16, 16, 16], numClasses: 5, imageSize: 16 });
  const weights = initWeights(spec, 3);
  const input = Array.from(tf.tidy(() => tf.randomNormal([8, 16, 16, 3], 0, 1, 'float32', 11).dataSync()));
  const forward = (): Float32Array => {
    const model = new TfModel(spec, weights);
    const logits = tf.tidy(() => model.forward(tf.tensor4d(input, [8, 16, 16, 3]), false).logits.dataSync() as Float32Array);
    model.dispose();
    return logits;
  };
  const lines: string[] = [];
  await selectBackend('wasm', { threads: 1, log: (l) => lines.push(l) });
  assert.equal(wasm.getThreadsCount(), 1);
  const single = forward();
  const threaded = await selectBackend('wasm', { threads: 2, log: (l) => lines.push(l) });
  assert.equal(threaded.name, 'wasm');
  assert.equal(wasm.getThreadsCount(), 2, lines.join('\n'));
  assert.match(lines[1], /WebAssembly SIMD, 2 threads;/);
  const multi = forward();
  assert.equal(multi.length, single.length);
  for (let i = 0; i < single.length; i++) assert.ok(Math.abs(multi[i] - single[i]) <= 1e-5 * (1 + Math.abs(single[i])), `logit ${i}: ${multi[i]} vs ${single[i]}`);
  // Choosing the same count again keeps the running backend and its thread pool.
  await selectBackend('wasm', { threads: 2, log: () => {} });
  assert.equal(wasm.getThreadsCount(), 2);
});
