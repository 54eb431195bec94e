import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../data/rng.js';
import { UserError } from '../data/errors.js';
import { initWeights } from '../models/init.js';
import { conv4Spec, resnet12Spec, type NamedWeights } from '../models/spec.js';
import { describeSpecMismatch, readCheckpoint, writeCheckpoint, type Checkpoint } from '../train/checkpoint.js';

function sampleCheckpoint(): Checkpoint {
  const spec = conv4Spec({ numClasses: 5, imageSize: 16, width: 4 });
  const weights = initWeights(spec, 3);
  const momentum: NamedWeights = new Map();
  for (const [name, t] of weights) {
    if (name.endsWith('running_mean') || name.endsWith('running_var')) continue;
    momentum.set(name, { data: t.data.map((v) => v * 0.5), shape: t.shape });
  }
  const rng = new Rng(7);
  rng.random();
  return {
    formatVersion: 1, spec, weights, optimizer: { kind: 'sgd', momentum, momentumFactor: 0.9, weightDecay: 5e-4, learningRate: 0.05 },
    epoch: 3, step: 30, rng: rng.getState(), dropBlockCalls: 30, config: { seed: 1, epochs: 5 }, generation: 0, complete: false,
    history: [{ generation: 0, epoch: 1, lr: 0.05, steps: 10, loss: 5, parts: { ce: 4, ss: 0.5 }, acc: 2, imagesPerSecond: 100, seconds: 1 }],
  };
}

test('a checkpoint round-trips: weights, momentum, RNG state and metadata', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'skd-ckpt-'));
  try {
    const ckpt = sampleCheckpoint();
    const path = join(dir, 'gen0.safetensors');
    await writeCheckpoint(path, ckpt);
    assert.deepEqual(await readdir(dir), ['gen0.safetensors'], 'no temporary file is left behind');
    const back = await readCheckpoint(path);
    assert.deepEqual(back.spec, ckpt.spec);
    assert.equal(back.weights.size, ckpt.weights.size);
    for (const [name, t] of ckpt.weights) {
      assert.deepEqual(back.weights.get(name)!.shape, t.shape);
      assert.deepEqual(back.weights.get(name)!.data, t.data, name);
    }
    for (const [name, t] of ckpt.optimizer!.momentum) assert.deepEqual(back.optimizer!.momentum.get(name)!.data, t.data, name);
    assert.equal(back.optimizer!.momentumFactor, 0.9);
    assert.equal(back.epoch, 3);
    assert.equal(back.step, 30);
    assert.equal(back.dropBlockCalls, 30);
    assert.equal(back.complete, false);
    assert.deepEqual(back.history, ckpt.history);
    assert.deepEqual(back.config, ckpt.config);
    const a = Rng.fromState(ckpt.rng);
    const b = Rng.fromState(back.rng);
    for (let i = 0; i < 5; i++) assert.equal(b.random(), a.random());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the file is plain safetensors: 8-byte header length, JSON header with string metadata, aligned F32 data', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'skd-ckpt-'));
  try {
    const ckpt = sampleCheckpoint();
    const path = join(dir, 'c.safetensors');
    await writeCheckpoint(path, ckpt);
    const buf = await readFile(path);
    const n = Number(buf.readBigUInt64LE(0));
    assert.equal((8 + n) % 8, 0, 'data section 8-byte aligned');
    const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> & { __metadata__: Record<string, string> };
    assert.equal(header.__metadata__.format, 'skd-checkpoint');
    assert.equal(header.__metadata__.format_version, '1');
    for (const v of Object.values(header.__metadata__)) assert.equal(typeof v, 'string');
    const w = header['layer1.0.weight'];
    assert.equal(w.dtype, 'F32');
    assert.deepEqual(w.shape, [4, 3, 3, 3]);
    const start = 8 + n + w.data_offsets[0];
    const first = buf.readFloatLE(start);
    assert.equal(first, ckpt.weights.get('layer1.0.weight')!.data[0]);
    assert.ok(header['optimizer.momentum.layer1.0.weight'], 'momentum buffers under optimizer.momentum.<name>');
    // Contiguous data, as safetensors readers require.
    const entries = Object.entries(header as Record<string, unknown>).filter(([k]) => k !== '__metadata__');
    const spans = entries.map(([, v]) => (v as { data_offsets: [number, number] }).data_offsets).sort((p, q) => p[0] - q[0]);
    let end = 0;
    for (const [s, e] of spans) { assert.equal(s, end); end = e; }
    assert.equal(8 + n + end, buf.length);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('unreadable checkpoints give one clear UserError naming the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'skd-ckpt-'));
  try {
    await assert.rejects(readCheckpoint(join(dir, 'missing.safetensors')), (e: Error) => e instanceof UserError && /checkpoint not found: .*missing\.safetensors/.test(e.message));
    const junk = join(dir, 'junk.safetensors');
    await writeFile(junk, 'hello, not a checkpoint');
    await assert.rejects(readCheckpoint(junk), (e: Error) => e instanceof UserError && /junk\.safetensors is not a readable safetensors checkpoint/.test(e.message));
    // A truncated checkpoint (an interrupted copy) is refused, not half-read.
    const good = join(dir, 'good.safetensors');
    await writeCheckpoint(good, sampleCheckpoint());
    const bytes = await readFile(good);
    const cut = join(dir, 'cut.safetensors');
    await writeFile(cut, bytes.subarray(0, bytes.length - 100));
    await assert.rejects(readCheckpoint(cut), (e: Error) => e instanceof UserError && /cut\.safetensors/.test(e.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('spec mismatches are described in words', () => {
  const a = resnet12Spec({ numClasses: 64, widths: [8, 16, 32, 64] });
  assert.equal(describeSpecMismatch(a, resnet12Spec({ numClasses: 64, widths: [8, 16, 32, 64] })), undefined);
  assert.match(describeSpecMismatch(a, conv4Spec({ numClasses: 64 }))!, /architecture conv4 instead of resnet12/);
  assert.match(describeSpecMismatch(a, resnet12Spec({ numClasses: 64, widths: [8, 16, 32, 32] }))!, /widths 8-16-32-32 instead of 8-16-32-64/);
  assert.match(describeSpecMismatch(a, resnet12Spec({ numClasses: 60, widths: [8, 16, 32, 64] }))!, /60 classes instead of 64/);
});
