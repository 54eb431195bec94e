/** Gradient accumulation over micro-batches in the ONNX Runtime engine: the sums, the masks' rows, the flag and the auto rule. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { UserError } from '../data/errors.js';
import { initWeights, SeededStream } from '../models/init.js';
import { resnet12Spec, type NamedWeights } from '../models/spec.js';
import { selectBackend } from '../models/tfjs-backend.js';
import { encodeOnnxModel } from '../proto/codec.js';
import { readCheckpoint } from '../train/checkpoint.js';
import type { TrainOptions } from '../train/config.js';
import { checkEngineMicroBatch, createEngine, type EngineSetup } from '../train/create-engine.js';
import { countCorrect } from '../train/engine.js';
import { trainGen0 } from '../train/gen0.js';
import { evalGraph, stepMask } from '../train/ort/engine.js';
import { blockRows, chooseMicroBatch, resolveMicroBatch } from '../train/ort/micro-batch.js';
import { nhwcToNchw, rotatedBatch } from '../train/ort/rotate.js';
import { sgdUpdate } from '../train/ort/sgd.js';
import { buildStepGraph } from '../train/ort/step-graph.js';
import { relativeError } from './helpers/train-step-fixture.js';
import { runSkd } from './helpers/run-skd.js';

let dir = '';
before(async () => {
  await selectBackend('cpu', { log: () => undefined });
  dir = await mkdtemp(join(tmpdir(), 'skd-micro-batch-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const S = 16;
const spec = resnet12Spec({ widths: [8, 16, 32, 64], numClasses: 10, imageSize: S });
const BATCH = 4;
const LR = 0.05;
const sgd = { momentum: 0.9, weightDecay: 5e-4 };
const CALLS = 7000; // DropBlock already dropping blocks

function batch(): { pixels: Float32Array; labels: Int32Array } {
  const rng = new SeededStream(21, 0);
  return {
    pixels: Float32Array.from({ length: BATCH * S * S * 3 }, () => 2 * rng.next() - 1),
    labels: Int32Array.from({ length: BATCH }, () => Math.floor(rng.next() * 10)),
  };
}

const copy = (w: NamedWeights): NamedWeights => new Map([...w].map(([k, v]) => [k, { data: Float32Array.from(v.data), shape: [...v.shape] }]));

/**
 * One optimiser step written out by hand: the step graph for micro-batches of m images run on each part in
 * turn (its images, its rows of the whole-batch masks, the running statistics of the previous part), the
 * gradients averaged, sgdUpdate once.
 */
async function handStep(setup: EngineSetup, m: number, pixels: Float32Array, labels: Int32Array) {
  const gen0 = setup.loss.kind === 'gen0';
  const turns = gen0 ? [0, 1, 2, 3] as const : [0, 2] as const;
  const graph = buildStepGraph(spec, m, setup.loss);
  const session = await ort.InferenceSession.create(encodeOnnxModel(graph.model));
  const weights = copy(setup.weights);
  const x = nhwcToNchw(pixels, BATCH, S, S, 3);
  let teacherLogits: Float32Array | undefined;
  if (!gen0) {
    const teacher = await ort.InferenceSession.create(evalGraph(spec, setup.teacher!, 'logits', 'nchw'));
    teacherLogits = (await teacher.run({ images: new ort.Tensor('float32', x, [BATCH, 3, S, S]) })).logits.data as Float32Array;
    await teacher.release();
  }
  const masks = graph.masks.map((mk) => {
    const [, h, w, c] = mk.shape;
    return stepMask(mk.node, mk.index, [turns.length * BATCH, h, w, c], setup.dropoutSeed, CALLS + 1);
  });
  const parts = BATCH / m;
  const sums = new Map<string, Float32Array>();
  const losses: number[] = [];
  let correct = 0;
  const image = 3 * S * S;
  for (let j = 0; j < parts; j++) {
    const feeds: Record<string, ort.Tensor> = {};
    feeds.images = new ort.Tensor('float32', rotatedBatch(x.slice(j * m * image, (j + 1) * m * image), m, 3, S, turns), [graph.rows, 3, S, S]);
    const mine = labels.slice(j * m, (j + 1) * m);
    if (gen0) {
      const t = new Float32Array(graph.rows * 10);
      for (let r = 0; r < graph.rows; r++) t[r * 10 + mine[r % m]] = 1;
      feeds.targets = new ort.Tensor('float32', t, [graph.rows, 10]);
    } else {
      feeds.teacher_logits = new ort.Tensor('float32', teacherLogits!.slice(j * m * 10, (j + 1) * m * 10), [m, 10]);
    }
    for (const p of [...graph.params, ...graph.running]) feeds[p.name] = new ort.Tensor('float32', weights.get(p.name)!.data, p.shape);
    // Mask rows of this part: rotation block k, image j*m + i is row k*BATCH + j*m + i of the whole batch.
    graph.masks.forEach((mk, n) => {
      const size = mk.shape[1] * mk.shape[2] * mk.shape[3];
      const rows = new Float32Array(turns.length * m * size);
      for (let k = 0; k < turns.length; k++) for (let i = 0; i < m; i++) {
        const row = k * BATCH + j * m + i;
        rows.set(masks[n].slice(row * size, (row + 1) * size), (k * m + i) * size);
      }
      feeds[mk.name] = new ort.Tensor('float32', rows, mk.shape);
    });
    const out = await session.run(feeds);
    losses.push((out.loss.data as Float32Array)[0]);
    correct += countCorrect(out.logits.data as Float32Array, 10, mine);
    for (const r of graph.running) weights.get(r.name)!.data.set(out[`new:${r.name}`].data as Float32Array);
    for (const name of graph.gradients) {
      const g = out[`grad:${name}`].data as Float32Array;
      const sum = sums.get(name);
      if (sum) for (let i = 0; i < g.length; i++) sum[i] += g[i];
      else sums.set(name, Float32Array.from(g));
    }
  }
  await session.release();
  for (const [name, sum] of sums) {
    const mean = parts === 1 ? sum : sum.map((v) => v / parts);
    sgdUpdate(weights.get(name)!.data, mean, new Float32Array(mean.length), LR, sgd);
  }
  return { weights, losses, correct };
}

async function engineStep(setup: EngineSetup, microBatch: number | 'auto') {
  const lines: string[] = [];
  const engine = await createEngine({ ...setup, microBatch }, { engine: 'ort', log: (l) => lines.push(l) });
  try {
    const { pixels, labels } = batch();
    const result = await engine.step(pixels, labels, LR);
    return { result, weights: engine.getWeights(), calls: engine.dropBlockCalls, microBatch: engine.microBatch, lines: lines.filter((l) => !/^engine:/.test(l)) };
  } finally {
    await engine.dispose();
  }
}

const setups: Record<string, EngineSetup> = {
  'Gen-0': { spec, weights: initWeights(spec, 5), batchSize: BATCH, loss: { kind: 'gen0', gamma: 2 }, sgd, dropoutSeed: 5, dropBlockCalls: CALLS },
  'Gen-1': {
    spec, weights: initWeights(spec, 6), teacher: initWeights(spec, 7), batchSize: BATCH, loss: { kind: 'gen1', gamma: 0.1, temperature: 4 }, sgd, dropoutSeed: 2, dropBlockCalls: CALLS,
  },
};

for (const [generation, setup] of Object.entries(setups)) {
  test(`${generation}: two micro-batches give the averaged gradients of the halves, one SGD update and the mean loss`, async () => {
    const { pixels, labels } = batch();
    const want = await handStep(setup, 2, pixels, labels);
    const got = await engineStep(setup, 2);
    assert.equal(got.microBatch, 2);
    assert.equal(got.calls, CALLS + 1, 'one DropBlock count per optimiser step, not per micro-batch');
    assert.deepEqual(got.lines, ['skd: accumulating gradients over 2 micro-batches of 2 per step of 4 images (batch-norm statistics are per micro-batch)']);
    const meanLoss = (want.losses[0] + want.losses[1]) / 2;
    assert.ok(Math.abs(got.result.loss - meanLoss) <= 1e-6 * Math.abs(meanLoss), `loss ${got.result.loss} vs ${meanLoss}`);
    assert.equal(got.result.correct, want.correct);
    if (generation === 'Gen-0') assert.equal(got.result.rotRows, 4 * BATCH);
    for (const [name, t] of want.weights) {
      const err = relativeError(got.weights.get(name)!.data, t.data);
      assert.ok(err <= 1e-5, `${name}: ${err}`);
    }
    // Batch-norm statistics are per micro-batch: the unsplit step ends elsewhere.
    const whole = await handStep(setup, BATCH, pixels, labels);
    assert.ok(relativeError(got.weights.get('layer1.bn1.running_var')!.data, whole.weights.get('layer1.bn1.running_var')!.data) > 1e-4);
  });

  test(`${generation}: a micro-batch of the whole batch is the unsplit step, bit for bit, and says nothing`, async () => {
    const { pixels, labels } = batch();
    const want = await handStep(setup, BATCH, pixels, labels);
    for (const microBatch of [BATCH, 'auto'] as const) {
      const got = await engineStep(setup, microBatch);
      assert.equal(got.microBatch, BATCH);
      assert.deepEqual(got.lines, []);
      assert.equal(got.result.loss, want.losses[0]);
      for (const [name, t] of want.weights) assert.deepEqual(got.weights.get(name)!.data, t.data, name);
    }
  });
}

test('the micro-batches\' rows of a whole-batch mask put back together are the mask', () => {
  const batchSize = 6;
  const rowSize = 5;
  for (const blocks of [4, 2]) {
    const whole = Float32Array.from({ length: blocks * batchSize * rowSize }, (_, i) => i);
    for (const m of [1, 2, 3, 6]) {
      const back = new Float32Array(whole.length);
      for (let j = 0; j < batchSize / m; j++) {
        const part = blockRows(whole, rowSize, batchSize, blocks, j * m, m);
        assert.equal(part.length, blocks * m * rowSize);
        for (let k = 0; k < blocks; k++) for (let i = 0; i < m; i++) {
          back.set(part.subarray((k * m + i) * rowSize, (k * m + i + 1) * rowSize), (k * batchSize + j * m + i) * rowSize);
        }
      }
      assert.deepEqual(back, whole, `${blocks} blocks, micro-batches of ${m}`);
    }
  }
});

test('auto: the whole batch when it fits, else the largest divisor that does', () => {
  const GB = 1e9;
  assert.equal(chooseMicroBatch(64, 0.1 * GB, 20 * GB), 64);
  assert.equal(chooseMicroBatch(64, 0.48 * GB, 20 * GB), 32);
  assert.equal(chooseMicroBatch(64, 0.48 * GB, 7 * GB), 8);
  assert.equal(chooseMicroBatch(48, 1 * GB, 20 * GB), 16);
  assert.equal(chooseMicroBatch(64, 100 * GB, 1 * GB), 1);
  assert.equal(resolveMicroBatch('auto', 64, 0.1 * GB, 20 * GB).note, undefined);
  const split = resolveMicroBatch('auto', 64, 0.48 * GB, 20 * GB);
  assert.equal(split.size, 32);
  assert.equal(split.note, 'skd: a step of 64 images needs about 31 GB, more than this machine has (20 GB usable): accumulating gradients over 2 micro-batches of 32 (batch-norm statistics are per micro-batch)');
  assert.match(resolveMicroBatch('auto', 64, 100 * GB, 1 * GB).note!, /64 micro-batches of 1 \(about 100 GB each, which may still not fit\)/);
  assert.deepEqual(resolveMicroBatch(16, 64, 100 * GB, 1 * GB), { size: 16, note: 'skd: accumulating gradients over 4 micro-batches of 16 per step of 64 images (batch-norm statistics are per micro-batch)' });
  assert.deepEqual(resolveMicroBatch(64, 64, 100 * GB, 1 * GB), { size: 64 });
  assert.throws(() => resolveMicroBatch(24, 64, 0, 0), (e: Error) => e instanceof UserError && /--micro-batch 24 does not divide --batch_size 64/.test(e.message));
  assert.doesNotThrow(() => checkEngineMicroBatch('tfjs', 64, 64));
  assert.doesNotThrow(() => checkEngineMicroBatch('tfjs', 'auto', 64));
  assert.throws(() => checkEngineMicroBatch('tfjs', 32, 64), UserError);
});

test('a resumed micro-batched run equals an uninterrupted one and keeps the checkpoint\'s micro-batch size', async () => {
  const run = (out: string, extra: Partial<TrainOptions> = {}): TrainOptions => ({
    dataset: 'toy', imageSize: 16, imagesPerClass: 2, model: 'resnet12', widths: [4, 8, 8, 8], batchSize: 32, microBatch: 16,
    epochs: 2, lrDecayEpochs: [1], maxStepsPerEpoch: 2, seed: 5, out, ...extra,
  });
  const whole = join(dir, 'whole');
  const split = join(dir, 'split');
  const quiet = { log: () => undefined };
  await trainGen0(run(whole), quiet);
  await trainGen0(run(split, { epochs: 1 }), quiet);
  const lines: string[] = [];
  // Resumed without the flag (auto): the checkpoint's size is used.
  await trainGen0({ ...run(split), microBatch: undefined, resume: true } as TrainOptions, { log: (l) => lines.push(l) });
  assert.ok(lines.some((l) => /2 micro-batches of 16 per step of 32/.test(l)), lines.join('\n'));
  const a = await readCheckpoint(join(whole, 'gen0.safetensors'));
  const b = await readCheckpoint(join(split, 'gen0.safetensors'));
  assert.equal(a.config.microBatch, 16);
  assert.equal(b.config.microBatch, 16);
  for (const [name, t] of a.weights) assert.deepEqual(b.weights.get(name)!.data, t.data, name);
  for (const [name, t] of a.optimizer!.momentum) assert.deepEqual(b.optimizer!.momentum.get(name)!.data, t.data, `momentum ${name}`);
});

test('skd train and skd demo refuse a --micro-batch that is not a divisor of the batch size, in one line', async () => {
  const out = join(dir, 'cli');
  const cases: [string[], RegExp][] = [
    [['train', 'gen0', '--dataset', 'toy', '--micro-batch', '24'], /^skd: --micro-batch 24 does not divide --batch_size 64: .*use one of 1, 2, 4, 8, 16, 32, 64 or auto$/],
    [['train', 'gen0', '--dataset', 'toy', '--batch_size', '32', '--micro-batch', '0'], /^skd: --micro-batch must be auto or an integer >= 1, got "0"$/],
    [['train', 'gen0', '--dataset', 'toy', '--micro-batch', '1.5'], /^skd: --micro-batch must be auto or an integer >= 1, got "1.5"$/],
    [['train', 'gen0', '--dataset', 'toy', '--micro-batch', 'half'], /^skd: --micro-batch must be auto or an integer >= 1, got "half"$/],
    [['train', 'gen0', '--dataset', 'toy', '--batch_size', '32', '--micro-batch', '16', '--engine', 'tfjs'], /^skd: --micro-batch 16: the tfjs engine steps whole batches; use --engine ort .*$/],
    [['demo', '--size', 'tiny', '--micro-batch', '16', '--engine', 'tfjs'], /^skd: --micro-batch 16: the tfjs engine steps whole batches; /],
    [['demo', '--size', 'tiny', '--micro-batch', '5'], /^skd: --micro-batch 5 does not divide --batch_size 32: /],
  ];
  for (const [args, message] of cases) {
    const r = await runSkd([...args, '--out', out]);
    assert.notEqual(r.code, 0, args.join(' '));
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${args.join(' ')}:\n${r.stderr}`);
    assert.match(lines[0], message);
  }
});
