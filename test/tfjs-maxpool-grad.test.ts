/** The wasm backend's max-pool gradient (replaced: the package's kernel misroutes windows whose maximum is not positive). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../models/tfjs-backend.js';

function poolGradient(): number[] {
  const x = tf.tensor4d([-1.6, -1.5, -0.76, 0.03, -0.55, -0.5, -0.92, 0.32, 2, 2, 1, 1, 2, 2, 0, 0], [2, 2, 2, 2]);
  const w = tf.tensor4d([-0.7, -1.1, 3, 5], [2, 1, 1, 2]);
  return Array.from(tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, 2, 2, 'valid'), w)))(x).dataSync()).map((v) => Math.round(v * 100) / 100);
}

test('wasm routes the max-pool gradient to the first maximum of each window, as the cpu backend does', async () => {
  // Channel 0 of image 0 has only negative values: its maximum, -0.55, is element 4.
  const expected = [0, 0, 0, 0, -0.7, 0, 0, -1.1, 3, 5, 0, 0, 0, 0, 0, 0];
  await selectBackend('cpu', { log: () => undefined });
  assert.deepEqual(poolGradient(), expected);
  await selectBackend('wasm', { threads: 1, log: () => undefined });
  assert.deepEqual(poolGradient(), expected);
});
