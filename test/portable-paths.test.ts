/**
 * Model files name no local folder: export records the training configuration's paths by base name, and files
 * exported before that are shown (skd inspect, /v1/model) and served (/model.onnx) the same way.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Rng } from '../data/rng.js';
import { buildMetadata } from '../export/metadata.js';
import { exportCheckpoint } from '../export/from-checkpoint.js';
import { readOnnxMetadataProps } from '../infer/onnx-metadata.js';
import { createServer, sha256File } from '../infer/server/server.js';
import { initWeights } from '../models/init.js';
import { resnet12Spec } from '../models/spec.js';
import { decodeOnnxModel, encodeOnnxModel } from '../proto/codec.js';
import { portableTrainingConfig } from '../proto/portable-config.js';
import { writeCheckpoint } from '../train/checkpoint.js';
import { runSkd } from './helpers/run-skd.js';
import { FakeExtractor } from './serve-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'skd-portable-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const spec = resnet12Spec({ widths: [8, 16, 32, 64], numClasses: 6 });
const HOME = '/home/alice/secret-project';
const LOCAL = { dataRoot: `${HOME}/data/cifar-fs/`, pathT: `${HOME}/runs/gen0/gen0.safetensors`, out: `${HOME}/runs/gen1` };

const contains = (bytes: Uint8Array, text: string) => Buffer.from(bytes).includes(Buffer.from(text));

test('the training configuration keeps base names of its paths, and nothing else changes', () => {
  const config = {
    ...LOCAL, dataset: 'CIFAR-FS', learningRate: 0.05, widths: [8, 16], note: 'a/b is fine', resume: 'C:\\Users\\alice\\run\\gen0.safetensors',
    relative: 'runs/x', nested: { teacher: '~/models/t.onnx', list: ['/srv/a.npz', 'plain'] },
  };
  assert.deepEqual(portableTrainingConfig(config), {
    dataRoot: 'cifar-fs', pathT: 'gen0.safetensors', out: 'gen1', dataset: 'CIFAR-FS', learningRate: 0.05, widths: [8, 16], note: 'a/b is fine',
    resume: 'gen0.safetensors', relative: 'runs/x', nested: { teacher: 't.onnx', list: ['a.npz', 'plain'] },
  });
  const props = buildMetadata({
    spec, outputs: ['features'], layout: 'nchw', normalization: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }, normalizationInGraph: false,
    trainingConfig: { ...LOCAL, epochs: 65, dataRoot: 'relative/data' },
  });
  assert.deepEqual(JSON.parse(props['skd.training_config']!), { dataRoot: 'data', pathT: 'gen0.safetensors', out: 'gen1', epochs: 65 });
});

let oldFile: string;

test('skd export writes no local path into the file', async () => {
  const ckpt = join(dir, 'gen1.safetensors');
  await writeCheckpoint(ckpt, {
    formatVersion: 1, spec, weights: initWeights(spec, 3), epoch: 8, step: 10, rng: new Rng(0).getState(), dropBlockCalls: 0,
    config: { dataset: 'CIFAR-FS', imageSize: 32, generation: 1, ...LOCAL }, generation: 1, complete: true, history: [],
  });
  const out = join(dir, 'new.onnx');
  await exportCheckpoint({ checkpoint: ckpt, out });
  const bytes = readFileSync(out);
  assert.ok(!contains(bytes, HOME), 'the exported file names a local folder');
  const config = JSON.parse(readOnnxMetadataProps(bytes)['skd.training_config']!);
  assert.equal(config.dataRoot, 'cifar-fs');
  assert.equal(config.pathT, 'gen0.safetensors');
  assert.equal(config.out, 'gen1');

  // A file as older versions wrote it: the same model with the absolute paths in its metadata.
  const model = decodeOnnxModel(bytes);
  model.metadataProps = model.metadataProps!.map((p) => p.key === 'skd.training_config' ? { key: p.key, value: JSON.stringify({ ...JSON.parse(p.value!), ...LOCAL }) } : p);
  oldFile = join(dir, 'old.onnx');
  writeFileSync(oldFile, encodeOnnxModel(model));
  assert.ok(contains(readFileSync(oldFile), HOME));
});

test('skd inspect shows an older file\'s paths by base name', async () => {
  for (const args of [['inspect', oldFile], ['inspect', oldFile, '--json']]) {
    const r = await runSkd(args);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes(HOME), `${args.join(' ')} shows a local path:\n${r.stdout}`);
    assert.match(r.stdout, /cifar-fs/);
  }
});

class MetadataExtractor extends FakeExtractor {
  constructor(override readonly metadata: Record<string, string>) {
    super(32);
  }
}

test('skd serve shows and serves an older file without its local paths; the model stays the same', async () => {
  const original = readFileSync(oldFile);
  const { app, ctx } = await createServer({ extractor: new MetadataExtractor(readOnnxMetadataProps(original)), modelPath: oldFile, storeDir: join(dir, 'store') });
  try {
    const info = await app.inject({ method: 'GET', url: '/v1/model' });
    assert.equal(info.statusCode, 200);
    assert.ok(!info.body.includes(HOME), info.body);
    assert.equal(JSON.parse(info.json().metadata['skd.training_config']).dataRoot, 'cifar-fs');
    // The sha256 that stored classifiers are tied to is the file's own.
    assert.equal(info.json().sha256, await sha256File(oldFile));
    assert.equal(ctx.model.sha256, info.json().sha256);

    const served = await app.inject({ method: 'GET', url: '/model.onnx' });
    assert.equal(served.statusCode, 200);
    const bytes = served.rawPayload;
    assert.equal(Number(served.headers['content-length']), bytes.length);
    assert.ok(!contains(bytes, HOME), 'the served model names a local folder');
    assert.deepEqual(decodeOnnxModel(bytes).graph, decodeOnnxModel(original).graph);
    // Both run in ONNX Runtime with the same answers.
    const input = { images: new ort.Tensor('float32', Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => Math.sin(i)), [2, 3, 32, 32]) };
    const [a, b] = await Promise.all([ort.InferenceSession.create(original), ort.InferenceSession.create(bytes)]);
    assert.deepEqual((await a.run(input)).features!.data, (await b.run(input)).features!.data);
    await Promise.all([a.release(), b.release()]);
  } finally {
    await app.close();
  }

  // A file with nothing to hide is served byte for byte.
  const clean = join(dir, 'new.onnx');
  const server = await createServer({ extractor: new MetadataExtractor(readOnnxMetadataProps(readFileSync(clean))), modelPath: clean, storeDir: join(dir, 'store2') });
  try {
    const served = await server.app.inject({ method: 'GET', url: '/model.onnx' });
    assert.deepEqual(new Uint8Array(served.rawPayload), new Uint8Array(readFileSync(clean)));
  } finally {
    await server.app.close();
  }
});
