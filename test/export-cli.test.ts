import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { Rng } from '../data/rng.js';
import { exportCheckpoint, type ExportCheckpointOptions } from '../export/from-checkpoint.js';
import { writeFileAtomic } from '../data/atomic-write.js';
import { initWeights } from '../models/init.js';
import { resnet12Spec } from '../models/spec.js';
import { readOnnxModelInfo } from '../proto/read.js';
import { writeCheckpoint } from '../train/checkpoint.js';
import { FIXTURES, runSkd } from './helpers/run-skd.js';

const dir = mkdtempSync(join(tmpdir(), 'skd-export-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const runDir = join(dir, 'run');
mkdirSync(runDir);
const spec = resnet12Spec({ widths: [8, 16, 32, 64], numClasses: 6 });
const config = { dataset: 'CIFAR-FS', dataRoot: join(FIXTURES, 'datasets'), imageSize: 32, learningRate: 0.05, epochs: 65 };

async function writeRun(generation: number): Promise<string> {
  const path = join(runDir, `gen${generation}.safetensors`);
  await writeCheckpoint(path, {
    formatVersion: 1, spec, weights: initWeights(spec, 20 + generation), epoch: 65, step: 100, rng: new Rng(0).getState(),
    dropBlockCalls: 100, config: { ...config, generation }, generation, complete: true, history: [],
  });
  return path;
}

/** Files in `folder` that look like a (partial) ONNX output. */
const onnxLeftovers = (folder: string) => readdirSync(folder).filter((f) => f.includes('.onnx'));

test('skd export writes a verified ONNX file with metadata from the checkpoint', async () => {
  const ckpt = await writeRun(0);
  const out = join(dir, 'model.onnx');
  const r = await runSkd(['export', '--checkpoint', ckpt, '--out', out, '--outputs', 'features,logits', '--verify', '--verify-images', '8', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { outputs: string[]; dataset: string; verification: { passed: boolean; realImages: number; maxRel: number } };
  assert.deepEqual(summary.outputs, ['features', 'logits']);
  assert.equal(summary.dataset, 'CIFAR-FS');
  assert.equal(summary.verification.passed, true);
  assert.equal(summary.verification.realImages, 8);
  assert.ok(summary.verification.maxRel <= 1e-4);
  assert.match(r.stderr, /verify: .*max rel/);

  const info = readOnnxModelInfo(out);
  assert.equal(info.metadata['skd.dataset'], 'CIFAR-FS');
  assert.equal(info.metadata['skd.generation'], '0');
  assert.equal(info.metadata['skd.epoch'], '65');
  assert.equal(JSON.parse(info.metadata['skd.training_config']).learningRate, 0.05);
  assert.deepEqual(JSON.parse(info.metadata['skd.mean']), [0.5071, 0.4867, 0.4408]);
  const session = await ort.InferenceSession.create(out, { graphOptimizationLevel: 'all' });
  const res = await session.run({ images: new ort.Tensor('float32', new Float32Array(2 * 3 * 32 * 32), [2, 3, 32, 32]) });
  assert.deepEqual(res.logits.dims, [2, 6]);
  await session.release();
});

test('skd export given a run folder takes the last generation', async () => {
  await writeRun(0);
  await writeRun(1);
  const out = join(dir, 'gen1.onnx');
  const r = await runSkd(['export', '--checkpoint', runDir, '--out', out, '--bake-normalization', '--layout', 'nhwc']);
  assert.equal(r.code, 0, r.stderr);
  const info = readOnnxModelInfo(out);
  assert.equal(info.metadata['skd.generation'], '1');
  assert.equal(info.metadata['skd.normalization_in_graph'], 'true');
  assert.deepEqual(info.inputs[0].shape, ['batch', 32, 32, 3]);
});

test('skd export: bad input gives one clear line and leaves no .onnx behind', async () => {
  const ckpt = await writeRun(0);
  const badDir = join(dir, 'bad');
  mkdirSync(badDir);
  const notCheckpoint = join(badDir, 'notes.safetensors');
  writeFileSync(notCheckpoint, 'this is not a checkpoint');
  // Through the command line: the message is one line without a stack trace.
  const cli: [string[], RegExp][] = [
    [['--checkpoint', join(badDir, 'missing.safetensors'), '--out', join(badDir, 'a.onnx')], /^skd: checkpoint not found: .*missing\.safetensors\n$/],
    [['--checkpoint', ckpt, '--out', join(badDir, 'c.onnx'), '--outputs', 'features,embedding'], /^skd: unknown output 'embedding': the model has features, logits, rot_logits\n$/],
  ];
  for (const [args, message] of cli) {
    const r = await runSkd(['export', ...args]);
    assert.notEqual(r.code, 0, `${args.join(' ')} should fail`);
    assert.match(r.stderr, message);
  }
  // The library call behind it, for the other cases.
  const library: [ExportCheckpointOptions, RegExp][] = [
    [{ checkpoint: notCheckpoint, out: join(badDir, 'b.onnx') }, /notes\.safetensors is not a readable safetensors checkpoint/],
    [{ checkpoint: ckpt, out: join(badDir, 'no-such-folder', 'd.onnx') }, /cannot write .*d\.onnx: its folder .* does not exist/],
    [{ checkpoint: ckpt, out: badDir }, /cannot write .*bad: it is a directory/],
    [{ checkpoint: badDir, out: join(badDir, 'e.onnx') }, /folder without checkpoints/],
    [{ checkpoint: ckpt, out: join(badDir, 'f.onnx'), dataset: 'ImageNet-21k' }, /unknown dataset 'ImageNet-21k'/],
    [{ checkpoint: ckpt, out: join(badDir, 'g.onnx'), verify: true, verifyImages: -1 }, /--verify-images must be a whole number/],
  ];
  for (const [opts, message] of library) {
    await assert.rejects(exportCheckpoint(opts), { name: 'UserError', message });
  }
  assert.deepEqual(onnxLeftovers(badDir), []);
});

test('writeFileAtomic leaves no temporary file when the rename fails', () => {
  const target = join(dir, 'occupied');
  mkdirSync(join(target, 'inside'), { recursive: true });
  assert.throws(() => writeFileAtomic(target, new Uint8Array([1, 2, 3])), { name: 'UserError', message: /cannot write/ });
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});
