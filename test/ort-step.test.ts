/** The ONNX Runtime engine's step graphs against PyTorch autograd (test/fixtures/train_step). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { resnet12Spec } from '../models/spec.js';
import { encodeOnnxModel } from '../proto/codec.js';
import { checkOnnxModel } from '../proto/check.js';
import { nchwToNhwc } from '../infer/layout.js';
import { CONV_ALGORITHMS, type ConvAlgorithm } from '../train/ort/convolution.js';
import { buildStepGraph, type StepLoss } from '../train/ort/step-graph.js';
import { rotatedBatch } from '../train/ort/rotate.js';
import { sgdUpdate } from '../train/ort/sgd.js';
import { readTrainStepFixture, relativeError, type TrainStepFixture } from './helpers/train-step-fixture.js';

const dir = new URL('./fixtures/train_step/', new URL('../../test/', import.meta.url));

/** The fixture's NCHW keep masks rescaled as the reference does (dropout / (1 - p); DropBlock numel / sum), as NHWC. */
function scaledMasks(fx: TrainStepFixture): Float32Array[] {
  return fx.masks.map((m, i) => {
    let sum = 0;
    for (const v of m.data) sum += v;
    const scaled = m.data.map((v) => (i < 2 ? v / 0.9 : (v * m.data.length) / sum));
    const [n, c, h, w] = m.shape;
    const nhwc = new Float32Array(scaled.length);
    nchwToNhwc(scaled, nhwc, n, h, w, c);
    return nhwc;
  });
}

async function runFixture(fx: TrainStepFixture, loss: StepLoss, conv: ConvAlgorithm) {
  const spec = resnet12Spec({ widths: fx.widths, numClasses: fx.numClasses, imageSize: 32 });
  const [b, c, s] = fx.x.shape;
  const graph = buildStepGraph(spec, b, loss, conv);
  assert.deepEqual(checkOnnxModel(graph.model), []);
  const session = await ort.InferenceSession.create(encodeOnnxModel(graph.model), { graphOptimizationLevel: 'all' });
  const feeds: Record<string, ort.Tensor> = {};
  const images = rotatedBatch(fx.x.data, b, c, s, loss.kind === 'gen0' ? [0, 1, 2, 3] : [0, 2]);
  feeds.images = new ort.Tensor('float32', images, [graph.rows, c, s, s]);
  for (const p of [...graph.params, ...graph.running]) feeds[p.name] = new ort.Tensor('float32', fx.stateDict.get(p.name)!.data, p.shape);
  const masks = scaledMasks(fx);
  graph.masks.forEach((m, i) => { feeds[m.name] = new ort.Tensor('float32', masks[i], m.shape); });
  if (loss.kind === 'gen0') {
    const t = new Float32Array(graph.rows * fx.numClasses);
    for (let r = 0; r < graph.rows; r++) t[r * fx.numClasses + fx.y![r % b]] = 1;
    feeds.targets = new ort.Tensor('float32', t, [graph.rows, fx.numClasses]);
  } else {
    feeds.teacher_logits = new ort.Tensor('float32', fx.teacherLogits!.data, fx.teacherLogits!.shape);
  }
  const out = await session.run(feeds);
  await session.release();
  return { graph, out };
}

const close = (got: number, want: number, tol: number, what: string) =>
  assert.ok(Math.abs(got - want) <= tol * Math.max(1, Math.abs(want)), `${what}: ${got} vs ${want}`);

for (const conv of CONV_ALGORITHMS) test(`Gen-0 step graph (${conv} convolutions): loss, gradients, running statistics and SGD match PyTorch`, async () => {
  const fx = readTrainStepFixture(new URL('gen0_resnet12_w8-16-32-64.json', dir).pathname);
  const { graph, out } = await runFixture(fx, { kind: 'gen0', gamma: 2 }, conv);
  close(out.loss.data[0] as number, fx.scalars.loss, 1e-5, 'loss');
  close(out.ce.data[0] as number, fx.scalars.ce, 1e-5, 'ce');
  close(out.ss.data[0] as number, fx.scalars.bce, 1e-5, 'bce');
  assert.equal(graph.gradients.length, fx.grads.size);
  for (const [name, want] of fx.grads) {
    const got = out[`grad:${name}`].data as Float32Array;
    assert.ok(relativeError(got, want.data) <= 1e-4, `grad ${name}: ${relativeError(got, want.data)}`);
  }
  for (const [name, want] of fx.runningAfter!) {
    const got = out[`new:${name}`].data as Float32Array;
    assert.ok(relativeError(got, want.data) <= 1e-4, `${name}: ${relativeError(got, want.data)}`);
  }
  for (const [name, want] of fx.afterSgd!) {
    const w = Float32Array.from(fx.stateDict.get(name)!.data);
    sgdUpdate(w, out[`grad:${name}`].data as Float32Array, new Float32Array(w.length), 0.05, { momentum: 0.9, weightDecay: 5e-4 });
    assert.ok(relativeError(w, want.data) <= 1e-4, `after SGD ${name}: ${relativeError(w, want.data)}`);
  }
});

for (const conv of CONV_ALGORITHMS) test(`Gen-1 step graph (${conv} convolutions): KD + L2 loss and the student gradients match PyTorch`, async () => {
  const fx = readTrainStepFixture(new URL('gen1_resnet12_w8-16-32-64.json', dir).pathname);
  const { graph, out } = await runFixture(fx, { kind: 'gen1', gamma: 0.1, temperature: 2 }, conv);
  close(out.loss.data[0] as number, fx.scalars.loss, 1e-5, 'loss');
  close(out.kd.data[0] as number, fx.scalars.kd, 1e-5, 'kd');
  close(out.l2.data[0] as number, fx.scalars.l2, 1e-5, 'l2');
  assert.deepEqual([...graph.gradients].sort(), [...fx.grads.keys()].sort());
  for (const [name, want] of fx.grads) {
    const got = out[`grad:${name}`].data as Float32Array;
    assert.ok(relativeError(got, want.data) <= 1e-4, `grad ${name}: ${relativeError(got, want.data)}`);
  }
});
