import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../models/tfjs-backend.js';
import { conv2d, setConvGradMode, backendHasNativeConvGrad } from '../models/conv-grad.js';

const quiet = { log: () => {} };

interface Case { inCh: number; outCh: number; kernel: number; stride: number; padding: number; size: number }
const CASES: Case[] = [
  { inCh: 3, outCh: 8, kernel: 3, stride: 1, padding: 1, size: 9 }, // 'same'
  { inCh: 5, outCh: 4, kernel: 3, stride: 1, padding: 0, size: 8 }, // 'valid'
  { inCh: 16, outCh: 16, kernel: 3, stride: 2, padding: 1, size: 9 },
  { inCh: 4, outCh: 6, kernel: 3, stride: 2, padding: 0, size: 10 }, // stride does not divide: output cropped
  { inCh: 8, outCh: 12, kernel: 1, stride: 1, padding: 0, size: 6 },
  { inCh: 7, outCh: 3, kernel: 1, stride: 2, padding: 0, size: 7 },
  { inCh: 1, outCh: 32, kernel: 3, stride: 1, padding: 1, size: 5 },
];

/** Gradients of sum(conv(x, w) * r) w.r.t. x and w, r a fixed random tensor (so dy is not constant). */
function grads(c: Case, mode: 'native' | 'custom'): { dx: Float32Array; dw: Float32Array; y: Float32Array } {
  setConvGradMode(mode);
  try {
    return tf.tidy(() => {
      const x = tf.randomNormal([2, c.size, c.size, c.inCh], 0, 1, 'float32', 11) as tf.Tensor4D;
      const w = tf.randomNormal([c.kernel, c.kernel, c.inCh, c.outCh], 0, 1, 'float32', 12) as tf.Tensor4D;
      const y = conv2d(x, w, { stride: c.stride, padding: c.padding });
      const r = tf.randomNormal(y.shape, 0, 1, 'float32', 13);
      const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv2d(a as tf.Tensor4D, b as tf.Tensor4D, { stride: c.stride, padding: c.padding }), r)))([x, w]);
      return { dx: dx.dataSync() as Float32Array, dw: dw.dataSync() as Float32Array, y: y.dataSync() as Float32Array };
    });
  } finally {
    setConvGradMode('auto');
  }
}

function assertClose(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 1;
  for (const v of expected) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < expected.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    if (diff > 1e-4 * scale) assert.fail(`${what}[${i}]: ${actual[i]} vs ${expected[i]} (scale ${scale})`);
  }
}

const label = (c: Case) => `${c.inCh}->${c.outCh} k${c.kernel} s${c.stride} p${c.padding} ${c.size}x${c.size}`;

test('the cpu backend has native conv gradients, wasm does not', async () => {
  await selectBackend('cpu', quiet);
  assert.equal(backendHasNativeConvGrad('cpu'), true);
  await selectBackend('wasm', quiet);
  assert.equal(backendHasNativeConvGrad('wasm'), false);
});

test('custom conv2d gradients equal the cpu backend native ones', async () => {
  for (const c of CASES) {
    await selectBackend('cpu', quiet);
    const native = grads(c, 'native');
    const customCpu = grads(c, 'custom');
    await selectBackend('wasm', quiet);
    const customWasm = grads(c, 'custom');
    assertClose(customCpu.dx, native.dx, `cpu dx ${label(c)}`);
    assertClose(customCpu.dw, native.dw, `cpu dw ${label(c)}`);
    assertClose(customWasm.y, native.y, `wasm y ${label(c)}`);
    assertClose(customWasm.dx, native.dx, `wasm dx ${label(c)}`);
    assertClose(customWasm.dw, native.dw, `wasm dw ${label(c)}`);
  }
});
