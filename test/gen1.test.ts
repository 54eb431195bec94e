import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../data/errors.js';
import type { NamedWeights } from '../models/spec.js';
import { selectBackend } from '../models/tfjs-backend.js';
import { readCheckpoint } from '../train/checkpoint.js';
import type { TrainOptions } from '../train/config.js';
import { trainGen0 } from '../train/gen0.js';
import { trainGen1 } from '../train/gen1.js';
import * as tf from '@tensorflow/tfjs-core';
import { CIFAR_NORMALIZATION } from '../data/datasets.js';
import { writeOnnxFile } from '../export/onnx.js';
import { TfModel } from '../models/tfjs.js';
import { teacherFromOnnx } from '../train/onnx-teacher.js';
import { FIXTURES, runSkd } from './helpers/run-skd.js';

let dir = '';
let teacherPath = '';
const data = { dataset: 'toy' as const, imageSize: 16, imagesPerClass: 4, batchSize: 32, seed: 3 };

before(async () => {
  await selectBackend('wasm', { threads: 1, log: () => undefined });
  dir = await mkdtemp(join(tmpdir(), 'skd-gen1-'));
  await trainGen0({ ...data, model: 'conv4', widths: [16], epochs: 1, maxStepsPerEpoch: 4, learningRate: 0.1, out: join(dir, 'gen0') });
  teacherPath = join(dir, 'gen0', 'gen0.safetensors');
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function assertSameWeights(actual: NamedWeights, expected: NamedWeights, what: string): void {
  assert.equal(actual.size, expected.size, `${what}: tensor count`);
  for (const [name, t] of expected) assert.deepEqual(actual.get(name)!.data, t.data, `${what}: ${name}`);
}

test('Gen-1 starts the student as the teacher, never changes the teacher, lowers its loss; Gen-2 distils from Gen-1', async () => {
  const teacherBytes = await readFile(teacherPath);
  const teacherCkpt = await readCheckpoint(teacherPath);
  const out = join(dir, 'gen1');
  const seen: { generation: number; student: NamedWeights; teacherBefore: NamedWeights; teacherAfter?: NamedWeights }[] = [];
  let teacherModel: { getWeights(): NamedWeights } | undefined;
  // No dataset or image size given: the run takes the teacher's (toy, 16x16, 4 images per class).
  const results = await trainGen1({ batchSize: 32, seed: 3, pathT: teacherPath, epochs: 3, lrDecayEpochs: [], maxStepsPerEpoch: 4, learningRate: 0.02, gamma: 0.5, generations: 2, out }, {
    onStart: ({ generation, model, teacher }) => {
      teacherModel = teacher;
      seen.push({ generation, student: model.getWeights(), teacherBefore: teacher!.getWeights() });
    },
    onEpoch: (r) => {
      if (r.epoch === 3) seen[seen.length - 1].teacherAfter = teacherModel!.getWeights();
    },
  });
  assert.deepEqual(results.map((r) => r.generation), [1, 2]);
  assert.deepEqual([results[0].config.dataset, results[0].config.imageSize, results[0].config.imagesPerClass], ['toy', 16, 4]);
  // Gen-1: the student's initial weights are the teacher checkpoint's, bit for bit (running statistics too).
  assertSameWeights(seen[0].student, teacherCkpt.weights, 'gen1 student at start');
  assertSameWeights(seen[0].teacherBefore, teacherCkpt.weights, 'gen1 teacher at start');
  assertSameWeights(seen[0].teacherAfter!, teacherCkpt.weights, 'gen1 teacher after training');
  assert.deepEqual(await readFile(teacherPath), teacherBytes, 'teacher checkpoint file unchanged');
  // The loss falls over the run.
  const h = results[0].history;
  assert.equal(h.length, 3);
  assert.ok(h[2].loss < h[0].loss, `gen1 loss ${h[0].loss} -> ${h[2].loss}`);
  assert.ok('kd' in h[0].parts && 'l2' in h[0].parts);
  // Gen-2's teacher is Gen-1's final checkpoint.
  const gen1 = await readCheckpoint(join(out, 'gen1.safetensors'));
  assert.equal(gen1.generation, 1);
  assert.equal(gen1.complete, true);
  assert.equal(gen1.config.pathT, teacherPath);
  assertSameWeights(seen[1].student, gen1.weights, 'gen2 student at start');
  assertSameWeights(seen[1].teacherAfter!, gen1.weights, 'gen2 teacher after training');
  const gen2 = await readCheckpoint(join(out, 'gen2.safetensors'));
  assert.equal(gen2.generation, 2);
  assert.equal(gen2.config.pathT, join(out, 'gen1.safetensors'));
  const log = (await readFile(join(out, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { generation: number; kd: number });
  assert.deepEqual(log.map((l) => l.generation), [1, 1, 1, 2, 2, 2]);
  assert.equal(typeof log[0].kd, 'number');
});

test('a resumed Gen-1 run equals an uninterrupted one', async () => {
  const opts = { pathT: teacherPath, batchSize: 32, seed: 9, epochs: 2, lrDecayEpochs: [], maxStepsPerEpoch: 2, learningRate: 0.02 };
  await trainGen1({ ...opts, out: join(dir, 'whole') });
  await trainGen1({ ...opts, epochs: 1, out: join(dir, 'split') });
  await trainGen1({ ...opts, out: join(dir, 'split'), resume: true } as TrainOptions);
  const a = await readCheckpoint(join(dir, 'whole', 'gen1.safetensors'));
  const b = await readCheckpoint(join(dir, 'split', 'gen1.safetensors'));
  assert.equal(b.epoch, 2);
  assert.deepEqual(b.rng, a.rng);
  assert.equal(b.dropBlockCalls, a.dropBlockCalls);
  assertSameWeights(b.weights, a.weights, 'resumed student');
  assertSameWeights(b.optimizer!.momentum, a.optimizer!.momentum, 'resumed momentum');
});

test('a missing, unreadable or mismatched teacher is refused with a clear message', async () => {
  const base: TrainOptions = { ...data, epochs: 1, maxStepsPerEpoch: 1, out: join(dir, 'bad') };
  await assert.rejects(trainGen1({ ...base, pathT: join(dir, 'nope.safetensors') }), (e: Error) => e instanceof UserError && /checkpoint not found: .*nope\.safetensors/.test(e.message));
  const junk = join(dir, 'junk.safetensors');
  await writeFile(junk, 'not a checkpoint at all');
  await assert.rejects(trainGen1({ ...base, pathT: junk }), (e: Error) => e instanceof UserError && /junk\.safetensors is not a readable safetensors checkpoint/.test(e.message));
  await assert.rejects(trainGen1({ ...base, pathT: teacherPath, model: 'resnet12' }), (e: Error) => e instanceof UserError && /does not match --model\/--widths: it has architecture conv4 instead of resnet12/.test(e.message));
  await assert.rejects(trainGen1({ ...base, pathT: teacherPath, imageSize: 32 }), (e: Error) => e instanceof UserError && /takes 16x16 images, but this run uses 32x32/.test(e.message));
  await assert.rejects(trainGen1({ ...base }), (e: Error) => e instanceof UserError && /needs a teacher/.test(e.message));
});

test('an ONNX teacher is read back into the network: exported by skd (batch-norm folded) or by torch.onnx', async () => {
  const ckpt = await readCheckpoint(teacherPath);
  const onnxPath = join(dir, 'teacher.onnx');
  writeOnnxFile(onnxPath, { spec: ckpt.spec, weights: ckpt.weights, outputs: ['features', 'logits', 'rot_logits'], layout: 'nchw', normalization: CIFAR_NORMALIZATION });
  const x = tf.randomNormal([3, 16, 16, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  const reference = new TfModel(ckpt.spec, ckpt.weights);
  const expected = reference.forward(x, false).logits.dataSync();
  reference.dispose();
  let studentLogits: Float32Array | undefined;
  const notes: string[] = [];
  const [r] = await trainGen1({ ...data, pathT: onnxPath, epochs: 1, maxStepsPerEpoch: 1, out: join(dir, 'from-onnx'), engine: 'tfjs' }, {
    log: (l) => notes.push(l),
    onStart: ({ model }) => { studentLogits = (model as TfModel).forward(x, false).logits.dataSync() as Float32Array; },
  });
  assert.equal(r.history.length, 1);
  assert.ok(notes.some((n) => /batch-norm folded/.test(n)), notes.join('\n'));
  assert.equal(studentLogits!.length, expected.length);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(studentLogits![i] - expected[i]) < 1e-4, `logit ${i}: ${studentLogits![i]} vs ${expected[i]}`);
  // A PyTorch-exported ResNet-12 (10 classes, 32x32) is read and checked against ONNX Runtime; here it does not fit the data.
  const torchOnnx = join(FIXTURES, 'models', 'resnet12_w8-16-32-64_pytorch.onnx');
  const fromTorch = await teacherFromOnnx(torchOnnx, { imageSize: 32, numClasses: 10 });
  assert.deepEqual([fromTorch.spec.arch, fromTorch.spec.widths, fromTorch.spec.numClasses], ['resnet12', [8, 16, 32, 64], 10]);
  await assert.rejects(trainGen1({ ...data, imageSize: 32, pathT: torchOnnx, epochs: 1, out: join(dir, 'torch') }), (e: Error) => e instanceof UserError && /classifies 10 classes, but the toy training split has 64/.test(e.message));
  await assert.rejects(teacherFromOnnx(torchOnnx, { model: 'conv4', imageSize: 32, numClasses: 10 }), (e: Error) => e instanceof UserError && /does not match a conv4 .*16 convolutions, the description 4/.test(e.message));
  tf.dispose(x);
});

test('skd train gen1 reports a missing teacher in one line', async () => {
  const r = await runSkd(['train', 'gen1', '--dataset', 'toy', '--path_t', join(dir, 'missing.safetensors'), '--out', join(dir, 'cli'), '--backend', 'wasm']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /checkpoint not found: .*missing\.safetensors/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});
