import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../train/backend.js';
import { UserError } from '../data/errors.js';

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
