import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { exportOnnx, exportOnnxModel, IR_VERSION, OPSET_VERSION } from '../export/onnx.js';
import { foldedName } from '../export/graph.js';
import { loadReferenceStateDict } from '../models/reference.js';
import { conv4Spec, resnet12Spec, type NamedWeights } from '../models/spec.js';
import { initWeights } from '../models/init.js';
import { checkOnnxModel } from '../proto/check.js';
import { readOnnxModel, readOnnxModelInfo } from '../proto/read.js';
import { maxRelative } from './helpers/compare.js';
import { FIXTURES } from './helpers/run-skd.js';

const CIFAR = { mean: [0.5071, 0.4867, 0.4408], std: [0.2675, 0.2565, 0.2761] } as { mean: [number, number, number]; std: [number, number, number] };

type Nested = number | Nested[];
const flat = (v: Nested): number[] => (Array.isArray(v) ? v.flatMap(flat) : [v]);

const reference = JSON.parse(readFileSync(join(FIXTURES, 'models', 'resnet12_w8-16-32-64_reference.json'), 'utf8')) as {
  widths: number[]; n_cls: number; input_nchw: Nested; features: Nested; logits: Nested; rot_logits: Nested; state_dict: Record<string, unknown>;
};

async function session(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
}

test('exported reference weights reproduce the reference features, logits and rotation logits', async () => {
  const spec = resnet12Spec({ widths: reference.widths, numClasses: reference.n_cls });
  const weights = loadReferenceStateDict(reference);
  const bytes = exportOnnx({ spec, weights, outputs: ['features', 'logits', 'rot_logits'], normalization: CIFAR });
  const s = await session(bytes);
  assert.deepEqual(s.inputNames, ['images']);
  assert.deepEqual(s.outputNames, ['features', 'logits', 'rot_logits']);
  const input = Float32Array.from(flat(reference.input_nchw));
  const out = await s.run({ images: new ort.Tensor('float32', input, [3, 3, 32, 32]) });
  assert.deepEqual(out.features.dims, [3, 64]);
  assert.ok(maxRelative(out.features.data as Float32Array, flat(reference.features)) < 1e-4);
  assert.ok(maxRelative(out.logits.data as Float32Array, flat(reference.logits)) < 1e-4);
  assert.ok(maxRelative(out.rot_logits.data as Float32Array, flat(reference.rot_logits)) < 1e-4);
  await s.release();
});

test('the NHWC-input graph and the baked-normalisation graph compute the same features', async () => {
  const spec = resnet12Spec({ widths: reference.widths, numClasses: reference.n_cls });
  const weights = loadReferenceStateDict(reference);
  const nchw = Float32Array.from(flat(reference.input_nchw));
  const [n, c, h, w] = [3, 3, 32, 32];
  const nhwc = new Float32Array(nchw.length);
  for (let i = 0; i < n; i++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) {
    nhwc[((i * h + y) * w + x) * c + k] = nchw[((i * c + k) * h + y) * w + x];
  }
  const sNhwc = await session(exportOnnx({ spec, weights, layout: 'nhwc', normalization: CIFAR }));
  assert.deepEqual(sNhwc.outputNames, ['features']);
  const a = await sNhwc.run({ images: new ort.Tensor('float32', nhwc, [n, h, w, c]) });
  assert.ok(maxRelative(a.features.data as Float32Array, flat(reference.features)) < 1e-4);

  // Baked: feed pixels / 255 = x * std + mean; the graph normalises back.
  const pixels = new Float32Array(nchw.length);
  for (let i = 0; i < nchw.length; i++) {
    const k = Math.floor(i / (h * w)) % c;
    pixels[i] = nchw[i] * CIFAR.std[k] + CIFAR.mean[k];
  }
  const sBaked = await session(exportOnnx({ spec, weights, bakeNormalization: true, normalization: CIFAR }));
  const b = await sBaked.run({ images: new ort.Tensor('float32', pixels, [n, c, h, w]) });
  assert.ok(maxRelative(b.features.data as Float32Array, flat(reference.features)) < 1e-4);
  await sNhwc.release();
  await sBaked.release();
});

test('structure: opset and IR version, BN folded, every node input defined, names say which layer', () => {
  const spec = resnet12Spec({ widths: [8, 16, 32, 64], numClasses: 10 });
  const weights = initWeights(spec, 3);
  const model = exportOnnxModel({ spec, weights, outputs: ['features', 'rot_logits'], normalization: CIFAR });
  assert.equal(model.irVersion, IR_VERSION);
  assert.deepEqual(model.opsetImport, [{ domain: '', version: OPSET_VERSION }]);
  const g = model.graph;
  const ops = new Set(g.node.map((n) => n.opType));
  assert.ok(!ops.has('BatchNormalization') && !ops.has('Dropout'), `unexpected ops ${[...ops]}`);
  assert.deepEqual([...ops].sort(), ['Add', 'Conv', 'Flatten', 'Gemm', 'GlobalAveragePool', 'LeakyRelu', 'MaxPool']);
  // rot_logits needs the classifier too; outputs come in canonical order.
  assert.deepEqual(g.output.map((o) => o.name), ['features', 'rot_logits']);
  const defined = new Set<string>([...g.input.map((i) => i.name), ...g.initializer.map((t) => t.name ?? '')]);
  for (const node of g.node) {
    for (const i of node.input) assert.ok(defined.has(i), `${node.name} reads undefined ${i}`);
    for (const o of node.output) {
      assert.ok(!defined.has(o), `${o} defined twice`);
      defined.add(o);
    }
  }
  for (const o of g.output) assert.ok(defined.has(o.name));
  const used = new Set(g.node.flatMap((n) => n.input));
  for (const t of g.initializer) assert.ok(used.has(t.name!), `initializer ${t.name} unused`);
  const names = g.initializer.map((t) => t.name);
  assert.ok(names.includes('layer1.conv1+bn1.weight') && names.includes('layer1.conv1+bn1.bias'));
  assert.ok(names.includes('layer4.downsample.0+1.weight'));
  assert.ok(names.includes('classifier.weight') && names.includes('rot_classifier.bias'));
  assert.equal(g.input[0].type?.tensorType?.shape?.dim?.[0]?.dimParam, 'batch');
  assert.equal(foldedName('layer2.conv3', 'layer2.bn3'), 'layer2.conv3+bn3');
  // Max-pool is written before the block's final activation (exact, and cheaper).
  const at = (name: string) => g.node.findIndex((n) => n.name === name);
  assert.ok(at('layer1.add') < at('layer1.maxpool') && at('layer1.maxpool') < at('layer1.relu'));
  assert.deepEqual(g.node[at('layer1.relu')].output, ['layer1.maxpool']);

  // Only what 'features' needs is written.
  const featuresOnly = exportOnnxModel({ spec, weights, normalization: CIFAR });
  assert.ok(!featuresOnly.graph.node.some((n) => n.opType === 'Gemm'));

  // The structural check (the stand-in for the ONNX project's checker) passes every variant, read back from bytes.
  assert.deepEqual(checkOnnxModel(model), []);
  const conv4 = conv4Spec({ numClasses: 5, width: 8 });
  for (const variant of [
    { spec, weights },
    { spec, weights, layout: 'nhwc' as const, bakeNormalization: true },
    { spec: conv4, weights: initWeights(conv4, 2), outputs: ['logits', 'rot_logits'] },
  ]) {
    assert.deepEqual(checkOnnxModel(readOnnxModel(exportOnnx({ normalization: CIFAR, ...variant }))), []);
  }
});

test('metadata round-trips through the file', () => {
  const spec = conv4Spec({ numClasses: 5, width: 16 });
  const weights = initWeights(spec, 1);
  const bytes = exportOnnx({
    spec, weights, outputs: ['logits'], normalization: CIFAR,
    metadata: { dataset: 'CIFAR-FS', trainingConfig: { lr: 0.05, epochs: 65 }, epoch: 65 },
  });
  const info = readOnnxModelInfo(bytes);
  assert.equal(info.irVersion, IR_VERSION);
  assert.deepEqual(info.opsetImports, [{ domain: '', version: OPSET_VERSION }]);
  assert.equal(info.producer.name, 'skd');
  assert.deepEqual(info.inputs, [{ name: 'images', elemType: 'float32', shape: ['batch', 3, 32, 32] }]);
  assert.deepEqual(info.outputs, [
    { name: 'features', elemType: 'float32', shape: ['batch', 16] },
    { name: 'logits', elemType: 'float32', shape: ['batch', 5] },
  ]);
  const m = info.metadata;
  assert.equal(m['skd.layout'], 'nchw');
  assert.equal(m['skd.image_size'], '32');
  assert.equal(m['skd.channel_order'], 'rgb');
  assert.equal(m['skd.value_range'], 'normalized');
  assert.deepEqual(JSON.parse(m['skd.mean']), CIFAR.mean);
  assert.deepEqual(JSON.parse(m['skd.std']), CIFAR.std);
  assert.equal(m['skd.normalization_in_graph'], 'false');
  assert.equal(m['skd.feature_dim'], '16');
  assert.equal(m['skd.arch'], 'conv4');
  assert.deepEqual(JSON.parse(m['skd.widths']), [16, 16, 16, 16]);
  assert.equal(m['skd.num_classes'], '5');
  assert.equal(m['skd.dataset'], 'CIFAR-FS');
  assert.equal(m['skd.spec_version'], '1');
  assert.match(m['skd.version'], /^\d+\.\d+\.\d+/);
  assert.deepEqual(JSON.parse(m['skd.training_config']), { lr: 0.05, epochs: 65 });
  assert.deepEqual(JSON.parse(m['skd.outputs']), ['features', 'logits']);
  assert.equal(m['skd.epoch'], '65');
  // Conv-4 has conv biases: they fold too.
  assert.equal(info.opTypes.BatchNormalization, undefined);
  assert.equal(info.opTypes.Relu, 4);

  const baked = readOnnxModelInfo(exportOnnx({ spec, weights, normalization: CIFAR, bakeNormalization: true, layout: 'nhwc' }));
  assert.equal(baked.metadata['skd.value_range'], '0-1');
  assert.equal(baked.metadata['skd.normalization_in_graph'], 'true');
  assert.equal(baked.metadata['skd.layout'], 'nhwc');
  assert.deepEqual(baked.inputs[0].shape, ['batch', 32, 32, 3]);
});

test('bad input: unknown output, missing or misshapen weights', () => {
  const spec = conv4Spec({ numClasses: 5, width: 8 });
  const weights = initWeights(spec, 1);
  assert.throws(() => exportOnnx({ spec, weights, outputs: ['features', 'embedding'], normalization: CIFAR }),
    { name: 'UserError', message: /unknown output 'embedding'.*features, logits, rot_logits/ });
  const missing: NamedWeights = new Map(weights);
  missing.delete('layer2.1.running_var');
  assert.throws(() => exportOnnx({ spec, weights: missing, normalization: CIFAR }), { name: 'UserError', message: /layer2\.1\.running_var/ });
  const wrong: NamedWeights = new Map(weights);
  wrong.set('layer1.0.weight', { data: new Float32Array(8 * 3 * 5 * 5), shape: [8, 3, 5, 5] });
  assert.throws(() => exportOnnx({ spec, weights: wrong, normalization: CIFAR }), { name: 'UserError', message: /layer1\.0\.weight.*\[8, 3, 5, 5\]/ });
});
