import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readOnnxModelInfo, type OnnxModelInfo } from '../proto/read.js';
import { FIXTURES, runSkd } from './helpers/run-skd.js';

const PYTORCH_ONNX = join(FIXTURES, 'models', 'resnet12_w8-16-32-64_pytorch.onnx');

test('readOnnxModelInfo describes the PyTorch-exported fixture', () => {
  const info = readOnnxModelInfo(PYTORCH_ONNX);
  assert.equal(info.irVersion, 7);
  assert.deepEqual(info.opsetImports, [{ domain: '', version: 13 }]);
  assert.deepEqual(info.producer, { name: 'pytorch', version: '1.13.0' });
  assert.deepEqual(info.inputs, [{ name: 'images', elemType: 'float32', shape: ['batch', 3, 32, 32] }]);
  assert.deepEqual(info.outputs.map((o) => [o.name, o.shape]), [['features', ['batch', 64]], ['logits', ['batch', 10]], ['rot_logits', ['batch', 4]]]);
  assert.equal(info.nodeCount, 40);
  assert.equal(info.initializerCount, 36);
  assert.equal(info.opTypes.Conv, 16);
  assert.deepEqual(info.metadata, {});
});

test('skd inspect prints the PyTorch fixture, as text and as JSON', async () => {
  const text = await runSkd(['inspect', PYTORCH_ONNX]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /IR version 7; opset imports: ai\.onnx 13/);
  assert.match(text.stdout, /producer: pytorch 1\.13\.0/);
  assert.match(text.stdout, /images\s+float32\s+\[batch, 3, 32, 32\]/);
  assert.match(text.stdout, /rot_logits\s+float32\s+\[batch, 4\]/);
  assert.match(text.stdout, /40 nodes \(Conv 16/);
  const checked = await runSkd(['inspect', PYTORCH_ONNX, '--check']);
  assert.equal(checked.code, 0, checked.stderr);
  assert.match(checked.stdout, /check: no structural problems/);
  const json = await runSkd(['inspect', PYTORCH_ONNX, '--json']);
  assert.equal(json.code, 0, json.stderr);
  const info = JSON.parse(json.stdout) as OnnxModelInfo;
  assert.deepEqual(info.outputs.map((o) => o.name), ['features', 'logits', 'rot_logits']);
  assert.equal(info.parameterCount, readOnnxModelInfo(PYTORCH_ONNX).parameterCount);
});

test('skd inspect: a missing file or one that is not ONNX gives one clear line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-inspect-'));
  const text = join(dir, 'readme.onnx');
  writeFileSync(text, 'hello, this is text\n');
  const empty = join(dir, 'empty.onnx');
  writeFileSync(empty, '');
  for (const [file, message] of [[join(dir, 'nope.onnx'), /ONNX file not found/], [text, /is not an ONNX model/], [empty, /is not an ONNX model/], [dir, /is a directory/]] as const) {
    const r = await runSkd(['inspect', file]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
  rmSync(dir, { recursive: true, force: true });
});
