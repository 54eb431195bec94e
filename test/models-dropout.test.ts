import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../models/tfjs-backend.js';
import { resnet12Spec } from '../models/spec.js';
import { TfModel } from '../models/tfjs.js';
import { initWeights } from '../models/init.js';
import { blockKeepMask, dropBlockGamma, dropBlockKeepRate, dropBlockMask, dropoutMask } from '../models/masks.js';

await selectBackend('wasm', { log: () => {} });

test('DropBlock keep-rate schedule and gamma follow the reference formulas', () => {
  assert.equal(dropBlockKeepRate(0, 0.1, 40000), 1);
  assert.ok(Math.abs(dropBlockKeepRate(20000, 0.1, 40000) - 0.95) < 1e-12);
  assert.ok(Math.abs(dropBlockKeepRate(40000, 0.1, 40000) - 0.9) < 1e-12);
  assert.ok(Math.abs(dropBlockKeepRate(123456, 0.1, 40000) - 0.9) < 1e-12);
  // fs 4, bs 2 (CIFAR block 3): (1-k)/4 * 16/9; fs 2, bs 2 (block 4): 1-k
  assert.ok(Math.abs(dropBlockGamma(0.9, 2, 4) - (0.1 / 4) * (16 / 9)) < 1e-12);
  assert.ok(Math.abs(dropBlockGamma(0.9, 2, 2) - 0.1) < 1e-12);
  assert.ok(Math.abs(dropBlockGamma(0.95, 5, 10) - (0.05 / 25) * (100 / 36)) < 1e-12);
});

/** The reference's _compute_block_mask another way: 1 - max-pool (bs x bs, stride 1) of the seeds zero-padded by bs - 1. */
function maxPoolBlockMask(seeds: Float32Array, shape: number[], bs: number): Float32Array {
  return tf.tidy(() => {
    const p = bs - 1;
    const padded = tf.pad(tf.tensor4d(seeds, shape as [number, number, number, number]), [[0, 0], [p, p], [p, p], [0, 0]]) as tf.Tensor4D;
    return tf.sub(1, tf.maxPool(padded, bs, 1, 'valid')).dataSync() as Float32Array;
  });
}

test('block mask dilates each seed to a bs x bs block as the reference does', () => {
  for (const bs of [2, 3, 5]) {
    const shape = [2, 7, 6, 3];
    const seeds = Float32Array.from({ length: 2 * 7 * 6 * 3 }, (_, i) => ((i * 2654435761) % 97) < 9 ? 1 : 0);
    assert.deepEqual(Array.from(blockKeepMask(seeds, shape, bs)), Array.from(maxPoolBlockMask(seeds, shape, bs)), `bs ${bs}`);
  }
});

test('dropout and DropBlock masks: values, rescaling, determinism by seed', () => {
  {
    const m = dropoutMask([4000], 0.1, 5);
    const zeros = m.filter((v) => v === 0).length;
    assert.ok(m.every((v) => v === 0 || Math.abs(v - 1 / 0.9) < 1e-6));
    assert.ok(zeros > 300 && zeros < 500, `zeros ${zeros}`);
    assert.deepEqual(dropoutMask([50], 0.1, 5), dropoutMask([50], 0.1, 5));
    assert.notDeepEqual(dropoutMask([50], 0.1, 5), dropoutMask([50], 0.1, 6));
    const values = dropBlockMask([8, 4, 4, 16], 2, 0.9, 3)!;
    const sum = values.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - values.length) < 1e-2, 'rescaled so that the mean is 1');
    assert.ok(values.some((v) => v === 0));
    assert.equal(dropBlockMask([8, 4, 4, 16], 2, 1, 3), null, 'keep rate 1 drops nothing');
    // Seeds at rate gamma: the share of dropped positions is close to what the keep rate asks for.
    const wide = dropBlockMask([64, 8, 8, 32], 3, 0.9, 11)!;
    const dropped = wide.filter((v) => v === 0).length / wide.length;
    assert.ok(dropped > 0.07 && dropped < 0.11, `dropped ${dropped}`);
  }
});

test('dropout and DropBlock act in training mode only; masks follow (seed, call count) for resumption', () => {
  const spec = resnet12Spec({ widths: [4, 4, 8, 8], numClasses: 5 });
  const quiet = resnet12Spec({ widths: [4, 4, 8, 8], numClasses: 5, dropRate: 0 });
  const weights = initWeights(spec, 9);
  const x = tf.randomNormal([4, 32, 32, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
  const run = (m: TfModel, training: boolean) => tf.tidy(() => Array.from(m.forward(x, training).logits.dataSync()));
  const a = new TfModel(spec, weights, { dropoutSeed: 17 });
  const noDrop = new TfModel(quiet, weights, { dropoutSeed: 17 });
  assert.deepEqual(run(a, false), run(noDrop, false), 'eval mode: no dropout');
  assert.equal(a.dropBlockCalls, 0);
  a.dropBlockCalls = 30000; // far along the schedule, so DropBlock is active
  noDrop.dropBlockCalls = 30000;
  const trainA = run(a, true);
  assert.equal(a.dropBlockCalls, 30001);
  assert.notDeepEqual(trainA, run(noDrop, true), 'training mode: dropout changes the output');

  // A fresh model with the same seed, set to the same call count, draws the same masks (resume).
  const resumed = new TfModel(spec, weights, { dropoutSeed: 17 });
  resumed.dropBlockCalls = 30000;
  assert.deepEqual(run(resumed, true), trainA);
  // The next call draws different masks.
  assert.notDeepEqual(run(resumed, true), trainA);
  const otherSeed = new TfModel(spec, weights, { dropoutSeed: 18 });
  otherSeed.dropBlockCalls = 30000;
  assert.notDeepEqual(run(otherSeed, true), trainA);
  for (const m of [a, noDrop, resumed, otherSeed]) m.dispose();
  x.dispose();
});
