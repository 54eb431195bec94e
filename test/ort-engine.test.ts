/** The ONNX Runtime engine against the TensorFlow.js engine, its device fallback and its refusals. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { UserError } from '../data/errors.js';
import { initWeights } from '../models/init.js';
import { resnet12Spec, type NamedWeights } from '../models/spec.js';
import { selectBackend } from '../models/tfjs-backend.js';
import { checkTfjsVersion } from '../models/tfjs-version.js';
import { readCheckpoint, writeCheckpoint } from '../train/checkpoint.js';
import { createEngine, type EngineSetup } from '../train/create-engine.js';
import { NonFiniteTeacherError, type EngineName, type StepResult } from '../train/engine.js';
import { trainGen0 } from '../train/gen0.js';
import { trainGen1 } from '../train/gen1.js';
import { SeededStream } from '../models/init.js';
import { relativeError } from './helpers/train-step-fixture.js';

let dir = '';
before(async () => {
  // The cross-check runs the tfjs engine on the backend users get without a native TensorFlow: wasm, with its
  // fused backbone op.
  await selectBackend('wasm', { log: () => undefined });
  dir = await mkdtemp(join(tmpdir(), 'skd-ort-engine-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const spec = resnet12Spec({ widths: [8, 16, 32, 64], numClasses: 10, imageSize: 16 });
const BATCH = 4;
// Max-pool argmax decisions between near-equal values (1e-7 apart) follow float rounding, which differs between
// implementations; a moderate step keeps three steps of both engines within 1e-4 of each other.
const LR = 0.02;

function batches(count: number): { pixels: Float32Array; labels: Int32Array }[] {
  const rng = new SeededStream(11, 0);
  return Array.from({ length: count }, () => ({
    pixels: Float32Array.from({ length: BATCH * 16 * 16 * 3 }, () => 2 * rng.next() - 1),
    labels: Int32Array.from({ length: BATCH }, () => Math.floor(rng.next() * 10)),
  }));
}

async function threeSteps(engineName: EngineName, setup: EngineSetup): Promise<{ results: StepResult[]; weights: NamedWeights; calls: number }> {
  // The ORT engine with direct convolutions (see above).
  const engine = await createEngine(setup, { engine: engineName, convolution: 'direct' });
  try {
    const results: StepResult[] = [];
    for (const b of batches(3)) results.push(await engine.step(b.pixels, b.labels, LR));
    return { results, weights: engine.getWeights(), calls: engine.dropBlockCalls };
  } finally {
    await engine.dispose();
  }
}

function assertSameRun(a: Awaited<ReturnType<typeof threeSteps>>, b: Awaited<ReturnType<typeof threeSteps>>): void {
  assert.equal(a.calls, b.calls);
  a.results.forEach((r, i) => {
    assert.ok(Math.abs(r.loss - b.results[i].loss) <= 1e-4 * Math.max(1, Math.abs(b.results[i].loss)), `step ${i + 1} loss ${r.loss} vs ${b.results[i].loss}`);
    for (const k of Object.keys(b.results[i].parts)) assert.ok(Math.abs(r.parts[k] - b.results[i].parts[k]) <= 1e-4, `step ${i + 1} ${k}`);
  });
  assert.equal(a.weights.size, b.weights.size);
  for (const [name, t] of b.weights) {
    const err = relativeError(a.weights.get(name)!.data, t.data);
    assert.ok(err <= 1e-4, `${name}: ${err}`);
  }
}

const sgd = { momentum: 0.9, weightDecay: 5e-4 };

// Three steps are compared with the ORT engine's direct convolutions: Winograd's rounding (about 1e-5; checked
// against PyTorch in ort-step.test.ts) flips enough near-equal max-pool decisions to part the runs by more.
test('Gen-0: three steps from the same seed end with the same losses and weights on both engines', async () => {
  const setup: EngineSetup = { spec, weights: initWeights(spec, 5), batchSize: BATCH, loss: { kind: 'gen0', gamma: 2 }, sgd, dropoutSeed: 5, dropBlockCalls: 7000 };
  assertSameRun(await threeSteps('ort', setup), await threeSteps('tfjs', setup));
});

test('Gen-1: three distillation steps end with the same losses and weights on both engines', async () => {
  const teacher = initWeights(spec, 6);
  const setup: EngineSetup = { spec, weights: teacher, teacher, batchSize: BATCH, loss: { kind: 'gen1', gamma: 0.1, temperature: 4 }, sgd, dropoutSeed: 2 };
  const ort = await threeSteps('ort', setup);
  assertSameRun(ort, await threeSteps('tfjs', setup));
  // The rotation head is outside the Gen-1 loss: neither decayed nor moved.
  assert.deepEqual(ort.weights.get('rot_classifier.weight')!.data, teacher.get('rot_classifier.weight')!.data);
});

test('a teacher with non-finite outputs stops Gen-1 naming the teacher, not the learning rate', async () => {
  const teacher = initWeights(spec, 6);
  const broken: NamedWeights = new Map(teacher);
  broken.set('classifier.bias', { data: new Float32Array(10).fill(NaN), shape: [10] });
  for (const engineName of ['ort', 'tfjs'] as const) {
    const engine = await createEngine({ spec, weights: teacher, teacher: broken, batchSize: BATCH, loss: { kind: 'gen1', gamma: 0.1, temperature: 4 }, sgd, dropoutSeed: 2 }, { engine: engineName });
    const [b] = batches(1);
    await assert.rejects(engine.step(b.pixels, b.labels, 0.01), NonFiniteTeacherError);
    await engine.dispose();
  }
  // Through the loop: a teacher checkpoint whose weights are NaN.
  const out = join(dir, 'teacher');
  await trainGen0({ dataset: 'toy', imageSize: 16, imagesPerClass: 4, batchSize: 32, model: 'conv4', widths: [8], epochs: 1, maxStepsPerEpoch: 1, out });
  const ckpt = await readCheckpoint(join(out, 'gen0.safetensors'));
  const bias = ckpt.weights.get('classifier.bias')!;
  bias.data.fill(NaN);
  const nanPath = join(dir, 'nan-teacher.safetensors');
  await writeCheckpoint(nanPath, ckpt);
  await assert.rejects(trainGen1({ pathT: nanPath, batchSize: 32, epochs: 1, maxStepsPerEpoch: 1, valEvery: 0, out: join(dir, 'student') }), (e: Error) =>
    e instanceof UserError && /teacher's outputs are non-finite/.test(e.message) && !/learning_rate/.test(e.message));
});

test('a device that is missing falls back to CPU with one line; auto says nothing', async () => {
  const setup: EngineSetup = { spec, weights: initWeights(spec, 1), batchSize: BATCH, loss: { kind: 'gen0', gamma: 2 }, sgd, dropoutSeed: 0 };
  for (const device of ['webgpu', 'cuda'] as const) {
    const lines: string[] = [];
    const engine = await createEngine(setup, { engine: 'ort', device, log: (l) => lines.push(l) });
    const failures = lines.filter((l) => /not available/.test(l));
    assert.equal(failures.length, 1, lines.join('\n'));
    assert.match(failures[0], device === 'cuda' ? /CUDA execution provider is not available .*; training on CPU/ : /WebGPU execution provider is not available .*; training on CPU/);
    await engine.dispose();
  }
  const lines: string[] = [];
  const engine = await createEngine(setup, { engine: 'ort', device: 'auto', log: (l) => lines.push(l) });
  assert.deepEqual(lines.filter((l) => /not available|CUDA|cuda/.test(l)), []);
  const [b] = batches(1);
  assert.ok(Number.isFinite((await engine.step(b.pixels, b.labels, 0.05)).loss));
  await engine.dispose();
});

test('the TensorFlow.js internals are checked against the release they were written for', () => {
  assert.doesNotThrow(() => checkTfjsVersion('@tensorflow/tfjs-core', 'test'));
  assert.throws(() => checkTfjsVersion('@tensorflow/tfjs-backend-wasm', 'it starts the threaded binary', '4.23.0'),
    (e: Error) => e instanceof UserError && /tfjs-backend-wasm 4\.23\.0 is installed, but .* written for 4\.22\.0/.test(e.message));
});
