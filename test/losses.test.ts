import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { FIXTURES } from './helpers/run-skd.js';
import { gen0Loss, gen1Loss } from '../train/losses.js';
import { rotate180, rotate270, rotate90, withAllRotations } from '../train/rotate.js';
import { registerGradients } from '../models/tfjs-gradients.js';
import { learningRateAt } from '../train/schedule.js';

await tf.setBackend('cpu');
await registerGradients();

function fixture<T>(rel: string): T {
  return JSON.parse(readFileSync(join(FIXTURES, rel), 'utf8')) as T;
}

function assertClose(actual: ArrayLike<number>, expected: number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

interface Gen0Fixture { gamma: number; z: number[][]; r: number[][]; y_repeated: number[]; ce: number; ss: number; loss: number; grad_z: number[][]; grad_r: number[][] }
interface Gen1Case { T: number; gamma: number; z_teacher: number[][]; z_student: number[][]; kd: number; l2: number; loss: number; grad_z_student: number[][] }

test('Gen-0 loss, its parts and its gradients match the reference within 1e-5', () => {
  const f = fixture<Gen0Fixture>('losses/gen0.json');
  const z = tf.tensor2d(f.z);
  const r = tf.tensor2d(f.r);
  const y = tf.tensor1d(f.y_repeated, 'int32');
  const parts = gen0Loss(z, r, y, f.gamma);
  assertClose([parts.ce.dataSync()[0], parts.ss.dataSync()[0], parts.loss.dataSync()[0]], [f.ce, f.ss, f.loss], 1e-5, 'ce/ss/loss');
  const [gz, gr] = tf.grads((a: tf.Tensor, b: tf.Tensor) => gen0Loss(a as tf.Tensor2D, b as tf.Tensor2D, y, f.gamma).loss)([z, r]);
  assertClose(gz.dataSync(), f.grad_z.flat(), 1e-5, 'grad_z');
  assertClose(gr.dataSync(), f.grad_r.flat(), 1e-5, 'grad_r');
});

test('Gen-1 loss, its parts and its gradients match the reference within 1e-5 at both temperatures', () => {
  const f = fixture<{ cases: Gen1Case[] }>('losses/gen1.json');
  assert.equal(f.cases.length, 2);
  for (const c of f.cases) {
    const zt = tf.tensor2d(c.z_teacher);
    const zs = tf.tensor2d(c.z_student);
    const parts = gen1Loss(zt, zs, c.T, c.gamma);
    assertClose([parts.kd.dataSync()[0], parts.l2.dataSync()[0], parts.loss.dataSync()[0]], [c.kd, c.l2, c.loss], 1e-5, `T=${c.T} kd/l2/loss`);
    const [g] = tf.grads((s: tf.Tensor) => gen1Loss(zt, s as tf.Tensor2D, c.T, c.gamma).loss)([zs]);
    assertClose(g.dataSync(), c.grad_z_student.flat(), 1e-5, `T=${c.T} grad_z_student`);
  }
});

test('the L2 term has a finite, zero gradient when an image and its twin give identical logits', () => {
  const zt = tf.tensor2d([[1, 2, 3]]);
  const zs = tf.tensor2d([[0.5, 0.1, -1], [0.5, 0.1, -1]]);
  const [g] = tf.grads((s: tf.Tensor) => gen1Loss(zt, s as tf.Tensor2D, 2, 1).l2)([zs]);
  assert.deepEqual(Array.from(g.dataSync()), [0, 0, 0, 0, 0, 0]);
});

test('rotations match the reference (counter-clockwise, numpy rot90) exactly', () => {
  const f = fixture<{ x_nhwc: number[][][][]; x90_nhwc: number[][][][]; x180_nhwc: number[][][][]; x270_nhwc: number[][][][] }>('rotations/rot.json');
  const x = tf.tensor4d(f.x_nhwc);
  assert.deepEqual(rotate90(x).arraySync(), f.x90_nhwc);
  assert.deepEqual(rotate180(x).arraySync(), f.x180_nhwc);
  assert.deepEqual(rotate270(x).arraySync(), f.x270_nhwc);
  const all = withAllRotations(x);
  assert.deepEqual(all.arraySync(), [...f.x_nhwc, ...f.x90_nhwc, ...f.x180_nhwc, ...f.x270_nhwc]);
});

test('the learning rate decays by 0.1 after each decay epoch (1-indexed, strictly below)', () => {
  assert.equal(learningRateAt(0.05, [60], 60), 0.05);
  assert.ok(Math.abs(learningRateAt(0.05, [60], 61) - 0.005) < 1e-15);
  assert.ok(Math.abs(learningRateAt(0.05, [30, 40, 50], 51) - 0.05e-3) < 1e-15);
  assert.ok(Math.abs(learningRateAt(0.05, [30, 40, 50], 41) - 0.05e-2) < 1e-15);
});
