/**
 * `skd export --triton DIR` writes a Triton model repository entry whose config.pbtxt parses against Triton's
 * ModelConfig (proto/model_config.proto) and describes the graph: its inputs and outputs with their data types
 * and dims, batching, an instance group; model.onnx is the exported file byte for byte.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../data/rng.js';
import { tritonConfig } from '../export/triton.js';
import { initWeights } from '../models/init.js';
import { resnet12Spec } from '../models/spec.js';
import { readOnnxModelInfo, type OnnxModelInfo } from '../proto/read.js';
import { writeCheckpoint } from '../train/checkpoint.js';
import { loadProto, parseTextFormat } from './helpers/pbtxt.js';
import { FIXTURES, REPO_ROOT, runSkd } from './helpers/run-skd.js';

const dir = mkdtempSync(join(tmpdir(), 'skd-triton-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const ModelConfig = loadProto(join(REPO_ROOT, 'proto', 'model_config.proto')).lookupType('inference.ModelConfig');

interface TensorConfig { name: string; data_type: string; format?: string; dims: number[] }

test('skd export --triton writes config.pbtxt that parses against ModelConfig and matches the graph', async () => {
  const spec = resnet12Spec({ widths: [8, 16, 32, 64], numClasses: 6 });
  const ckpt = join(dir, 'gen1.safetensors');
  await writeCheckpoint(ckpt, {
    formatVersion: 1, spec, weights: initWeights(spec, 3), epoch: 1, step: 1, rng: new Rng(0).getState(), dropBlockCalls: 0,
    config: { dataset: 'CIFAR-FS', dataRoot: join(FIXTURES, 'datasets'), imageSize: 32, generation: 1 }, generation: 1, complete: true, history: [],
  });
  const out = join(dir, 'skd-resnet12.onnx');
  const repo = join(dir, 'repo');
  const r = await runSkd(['export', '--checkpoint', ckpt, '--out', out, '--outputs', 'features,logits', '--triton', repo, '--triton-max-batch', '32', '--triton-queue-delay-us', '250', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).triton, { config: join(repo, 'skd-resnet12', 'config.pbtxt'), model: join(repo, 'skd-resnet12', '1', 'model.onnx') });
  assert.ok(readFileSync(join(repo, 'skd-resnet12', '1', 'model.onnx')).equals(readFileSync(out)));

  const config = parseTextFormat(readFileSync(join(repo, 'skd-resnet12', 'config.pbtxt'), 'utf8'), ModelConfig);
  const info = readOnnxModelInfo(out);
  assert.equal(config.name, 'skd-resnet12');
  assert.equal(config.platform, 'onnxruntime_onnx');
  assert.equal(config.max_batch_size, 32);
  assert.equal(config.default_model_filename, 'model.onnx');
  const tensors = (list: TensorConfig[]) => list.map((t) => [t.name, t.data_type, t.dims]);
  // The graph's batch dimension is symbolic, so Triton batches and the dims leave it out.
  for (const v of [...info.inputs, ...info.outputs]) assert.equal(typeof v.shape![0], 'string');
  assert.deepEqual(tensors(config.input as TensorConfig[]), info.inputs.map((v) => [v.name, 'TYPE_FP32', v.shape!.slice(1)]));
  assert.deepEqual(tensors(config.input as TensorConfig[]), [['images', 'TYPE_FP32', [3, 32, 32]]]);
  assert.equal((config.input as TensorConfig[])[0]!.format, 'FORMAT_NCHW');
  assert.deepEqual(tensors(config.output as TensorConfig[]), info.outputs.map((v) => [v.name, 'TYPE_FP32', v.shape!.slice(1)]));
  assert.deepEqual(tensors(config.output as TensorConfig[]), [['features', 'TYPE_FP32', [64]], ['logits', 'TYPE_FP32', [6]]]);
  assert.deepEqual(config.instance_group, [{ count: 1, kind: 'KIND_GPU' }]);
  assert.deepEqual(config.dynamic_batching, { preferred_batch_size: [8, 16, 32], max_queue_delay_microseconds: 250 });
  // The same message survives protobuf's binary encoding.
  const decoded = ModelConfig.toObject(ModelConfig.decode(ModelConfig.encode(ModelConfig.fromObject(config)).finish()), { enums: String, longs: Number });
  assert.deepEqual(decoded.input, config.input);
});

test('a graph with a fixed batch size gets max_batch_size 0, full dims and no dynamic batching', () => {
  const info = {
    inputs: [{ name: 'x', elemType: 'float32', shape: [1, 84, 84, 3] }],
    outputs: [{ name: 'y', elemType: 'float16', shape: [1, 640] }],
    metadata: { 'skd.layout': 'nhwc' },
  } as unknown as OnnxModelInfo;
  const config = parseTextFormat(tritonConfig(info, { name: 'fixed', instanceKind: 'cpu', instanceCount: 2 }), ModelConfig);
  assert.equal(config.max_batch_size, 0);
  assert.deepEqual((config.input as TensorConfig[])[0], { name: 'x', data_type: 'TYPE_FP32', dims: [1, 84, 84, 3] });
  assert.deepEqual((config.output as TensorConfig[])[0], { name: 'y', data_type: 'TYPE_FP16', dims: [1, 640] });
  assert.deepEqual(config.instance_group, [{ count: 2, kind: 'KIND_CPU' }]);
  assert.equal(config.dynamic_batching, undefined);
  assert.throws(() => tritonConfig({ ...info, inputs: [{ name: 'x', elemType: 'complex64', shape: [1] }] } as OnnxModelInfo, { name: 'c' }), /no data type/);
  assert.throws(() => tritonConfig(info, { name: 'bad/name' }), /must be 1-128/);
});

test('the text-format check refuses what Triton would refuse', () => {
  const bad: [string, RegExp][] = [
    ['name: "m"\nplatfrom: "onnxruntime_onnx"', /no field "platfrom"/],
    ['input [ { name: "x" data_type: TYPE_FLOAT32 dims: [ 3 ] } ]', /not a value of enum DataType/],
    ['max_batch_size: 1.5', /takes an integer/],
    ['max_batch_size: 4294967296', /does not fit/],
    ['name: "a"\nname: "b"', /given twice/],
    ['name: [ "a" ]', /not repeated/],
    ['instance_group [ { kind: KIND_TPU } ]', /not a value of enum Kind/],
    ['dynamic_batching { max_queue_delay_microseconds: -1 }', /does not fit/],
    ['input [ { name: "x" dims: [ 3, ] ', /expected/],
  ];
  for (const [text, message] of bad) assert.throws(() => parseTextFormat(text, ModelConfig), message, text);
});
