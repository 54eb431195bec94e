import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES } from './helpers/run-skd.js';
import { UserError } from '../data/errors.js';
import { cudaProviderInstalled, resetFallbackNotices } from '../infer/execution-provider.js';
import { FeatureExtractor } from '../infer/session.js';
import { readOnnxMetadataProps } from '../infer/onnx-metadata.js';

const MODEL = join(FIXTURES, 'models', 'resnet12_w8-16-32-64_pytorch.onnx');
const IDENTITY = { mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] };

/** Appends metadata_props entries (ModelProto field 14) to serialised ONNX bytes: concatenation is valid protobuf. */
function withMetadata(bytes: Uint8Array, props: Record<string, string>): Uint8Array {
  const enc = new TextEncoder();
  const varint = (v: number): number[] => { const out: number[] = []; while (v >= 0x80) { out.push((v & 0x7f) | 0x80); v >>>= 7; } out.push(v); return out; };
  const field = (tag: number, payload: Uint8Array | number[]): number[] => [tag, ...varint(payload.length), ...payload];
  const extra: number[] = [];
  for (const [k, v] of Object.entries(props)) extra.push(...field(0x72, [...field(0x0a, enc.encode(k)), ...field(0x12, enc.encode(v))]));
  const out = new Uint8Array(bytes.length + extra.length);
  out.set(bytes);
  out.set(extra, bytes.length);
  return out;
}

test('features of the PyTorch-exported fixture match the reference within 1e-4', async () => {
  const ref = JSON.parse(readFileSync(join(FIXTURES, 'models', 'resnet12_w8-16-32-64_reference.json'), 'utf8')) as { input_nchw: number[][][][]; features: number[][] };
  const fx = await FeatureExtractor.open(MODEL, { device: 'cpu', overrides: IDENTITY });
  try {
    assert.equal(fx.featureDim, 64);
    assert.equal(fx.preprocessing.layout, 'nchw');
    assert.equal(fx.preprocessing.size, 32);
    assert.equal(fx.provider, 'cpu');
    const n = ref.input_nchw.length, s = 32;
    const nhwc = new Float32Array(n * s * s * 3);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) {
      nhwc[((i * s + y) * s + x) * 3 + c] = ref.input_nchw[i]![c]![y]![x]!;
    }
    const features = await fx.extract(nhwc, n, { batchSize: 2 }); // two runs: batch of 2, then 1
    const want = ref.features.flat();
    assert.equal(features.length, want.length);
    for (let i = 0; i < want.length; i++) {
      assert.ok(Math.abs(features[i]! - want[i]!) <= 1e-4 * Math.max(1, Math.abs(want[i]!)), `feature ${i}: ${features[i]} vs ${want[i]}`);
    }
  } finally {
    await fx.close();
  }
});

test('preprocessing comes from metadata_props, and overrides win over it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-eval-'));
  try {
    const file = join(dir, 'with-meta.onnx');
    writeFileSync(file, withMetadata(readFileSync(MODEL), {
      'skd.layout': 'nchw', 'skd.image_size': '32', 'skd.channel_order': 'rgb', 'skd.mean': '[0.1,0.2,0.3]', 'skd.std': '[0.5,0.5,0.5]',
      'skd.normalization_in_graph': 'false', 'skd.feature_dim': '64', 'skd.arch': 'resnet12',
    }));
    assert.equal(readOnnxMetadataProps(readFileSync(file))['skd.arch'], 'resnet12');
    const fx = await FeatureExtractor.open(file, { device: 'cpu' });
    assert.deepEqual(fx.preprocessing.mean, [0.1, 0.2, 0.3]);
    assert.deepEqual(fx.preprocessing.std, [0.5, 0.5, 0.5]);
    assert.equal(fx.metadata['skd.feature_dim'], '64');
    // extractPixels normalises with the metadata's mean/std: the same as feeding (p/255 - mean)/std ourselves.
    const pixels = Uint8Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 37) % 256);
    const viaPixels = await fx.extractPixels(pixels, 1);
    const manual = Float32Array.from(pixels, (v, i) => (v / 255 - [0.1, 0.2, 0.3][i % 3]!) / 0.5);
    const direct = await fx.extract(manual, 1);
    for (let i = 0; i < 64; i++) assert.ok(Math.abs(viaPixels[i]! - direct[i]!) < 1e-5);
    await fx.close();
    const over = await FeatureExtractor.open(file, { device: 'cpu', overrides: { mean: [0, 0, 0] } });
    assert.deepEqual(over.preprocessing.mean, [0, 0, 0]);
    await over.close();

    const wrongDim = join(dir, 'wrong-dim.onnx');
    writeFileSync(wrongDim, withMetadata(readFileSync(MODEL), { 'skd.feature_dim': '640', 'skd.mean': '[0,0,0]', 'skd.std': '[1,1,1]' }));
    await assert.rejects(FeatureExtractor.open(wrongDim, { device: 'cpu' }), /skd.feature_dim = 640 but output 'features' has 64/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad models and options fail with one clear UserError', async () => {
  const isUser = (re: RegExp) => (err: unknown) => err instanceof UserError && re.test(err.message);
  await assert.rejects(FeatureExtractor.open(MODEL, { device: 'cpu', output: 'embedding', overrides: IDENTITY }), isUser(/no output 'embedding'; its outputs are: features, logits, rot_logits/));
  await assert.rejects(FeatureExtractor.open(MODEL, { device: 'cpu' }), isUser(/pass --mean and --std/));
  await assert.rejects(FeatureExtractor.open(MODEL, { device: 'cpu', overrides: { ...IDENTITY, layout: 'nhwc' } }), isUser(/not nhwc with 3 channels/));
  await assert.rejects(FeatureExtractor.open(MODEL, { device: 'cpu', overrides: { ...IDENTITY, size: 84 } }), isUser(/image size is 84/));
  await assert.rejects(FeatureExtractor.open(join(FIXTURES, 'nope.onnx'), { device: 'cpu' }), isUser(/model file not found/));
  await assert.rejects(FeatureExtractor.open(join(FIXTURES, 'README.md'), { device: 'cpu' }), isUser(/not an ONNX model|cannot load/));
  // 'logits' is a flat [batch, 10] output, so a head can use it.
  const logits = await FeatureExtractor.open(MODEL, { device: 'cpu', output: 'logits', overrides: IDENTITY });
  assert.equal(logits.featureDim, 10);
  await logits.close();
});

test('devices: auto says nothing on a machine without CUDA; cuda or webgpu asked for and missing fall back to CPU with one line', async () => {
  resetFallbackNotices();
  const autoLines: string[] = [];
  const auto = await FeatureExtractor.open(MODEL, { device: 'auto', threads: 1, overrides: IDENTITY, log: (l) => autoLines.push(l) });
  const cudaInstalled = cudaProviderInstalled();
  if (!cudaInstalled) {
    assert.equal(auto.provider, 'cpu');
    assert.deepEqual(autoLines, [], 'auto must not warn when the user did not ask for a GPU');
  }
  await auto.close();
  for (const device of ['cuda', 'webgpu'] as const) {
    const lines: string[] = [];
    for (let i = 0; i < 2; i++) {
      const fx = await FeatureExtractor.open(MODEL, { device, threads: 1, overrides: IDENTITY, log: (l) => lines.push(l) });
      if (fx.provider === 'cpu') assert.ok(lines.length === 1, `${device}: ${lines.join(' | ')}`);
      await fx.close();
    }
    assert.ok(lines.length <= 1, `said once: ${lines.join(' | ')}`);
    if (lines.length === 1) assert.match(lines[0]!, new RegExp(`the ${device === 'cuda' ? 'CUDA' : 'WebGPU'} execution provider is not available .*; running on CPU`));
  }
});
