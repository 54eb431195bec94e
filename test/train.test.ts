import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../data/errors.js';
import { selectBackend } from '../models/tfjs-backend.js';
import { readCheckpoint } from '../train/checkpoint.js';
import type { TrainOptions } from '../train/config.js';
import { trainGen0 } from '../train/gen0.js';
import { runSkd } from './helpers/run-skd.js';

before(async () => {
  await selectBackend('wasm', { threads: 1, log: () => undefined });
});

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'skd-train-'));
}

/** A tiny ResNet-12 (dropout and DropBlock active) on a tiny toy set: a few steps per epoch. */
function tinyResnet(out: string, extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    dataset: 'toy', imageSize: 16, imagesPerClass: 2, model: 'resnet12', widths: [4, 8, 8, 8], batchSize: 32,
    epochs: 2, lrDecayEpochs: [1], maxStepsPerEpoch: 2, seed: 5, out, ...extra,
  };
}

test('a tiny Gen-0 run lowers the training loss and beats the untrained network at few-shot validation', async () => {
  const out = await tempDir();
  try {
    const r = await trainGen0({
      dataset: 'toy', imageSize: 16, imagesPerClass: 16, model: 'conv4', widths: [32], epochs: 4, lrDecayEpochs: [],
      learningRate: 0.1, valEvery: 2, valEpisodes: 100, seed: 0, out,
    });
    assert.equal(r.history.length, 4);
    const first = r.history[0];
    const last = r.history[3];
    assert.ok(last.loss < first.loss, `loss ${first.loss} -> ${last.loss}`);
    assert.ok(last.parts.ss < first.parts.ss, `rotation loss ${first.parts.ss} -> ${last.parts.ss}`);
    assert.ok(r.initialValidation && last.val, 'validation ran before training and at the last epoch');
    assert.ok(last.val.accuracy > r.initialValidation.accuracy + 2, `val ${r.initialValidation.accuracy} -> ${last.val.accuracy}`);
    const log = (await readFile(join(out, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    assert.deepEqual(log.map((l) => l.epoch), [1, 2, 3, 4]);
    for (const key of ['loss', 'ce', 'ss', 'acc', 'rot_acc', 'lr', 'imgs_per_s', 'seconds']) assert.equal(typeof log[0][key], 'number', key);
    assert.equal(typeof log[3].val_acc, 'number');
    assert.equal(log[2].val_acc, undefined, 'validation every 2 epochs');
    const ckpt = await readCheckpoint(join(out, 'gen0.safetensors'));
    assert.equal(ckpt.epoch, 4);
    assert.equal(ckpt.complete, true);
    assert.equal(ckpt.spec.arch, 'conv4');
    assert.equal(ckpt.history.length, 4);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('a resumed run reaches the same weights, momentum and RNG state as an uninterrupted one', async () => {
  const whole = await tempDir();
  const split = await tempDir();
  try {
    await trainGen0(tinyResnet(whole));
    await trainGen0(tinyResnet(split, { epochs: 1 }));
    const notes: string[] = [];
    await trainGen0({ ...tinyResnet(split), resume: true } as TrainOptions, { log: (l) => notes.push(l) });
    assert.ok(notes.some((n) => /resuming gen0 .* after epoch 1/.test(n)), notes.join('\n'));
    const a = await readCheckpoint(join(whole, 'gen0.safetensors'));
    const b = await readCheckpoint(join(split, 'gen0.safetensors'));
    assert.equal(b.epoch, 2);
    assert.equal(b.step, a.step);
    assert.equal(b.dropBlockCalls, a.dropBlockCalls);
    assert.deepEqual(b.rng, a.rng);
    for (const [name, t] of a.weights) assert.deepEqual(b.weights.get(name)!.data, t.data, name);
    for (const [name, t] of a.optimizer!.momentum) assert.deepEqual(b.optimizer!.momentum.get(name)!.data, t.data, `momentum ${name}`);
    const log = (await readFile(join(split, 'log.jsonl'), 'utf8')).trim().split('\n');
    assert.equal(log.length, 2, 'one log line per epoch across the interruption');
  } finally {
    await rm(whole, { recursive: true, force: true });
    await rm(split, { recursive: true, force: true });
  }
});

test('a diverging run stops with a clear message and keeps the last good checkpoint', async () => {
  const out = await tempDir();
  try {
    const base = { ...tinyResnet(out), model: 'conv4' as const, widths: [8], epochs: 1 };
    await trainGen0(base);
    const path = join(out, 'gen0.safetensors');
    const good = await readFile(path);
    // Without --resume an existing run is never overwritten.
    await assert.rejects(trainGen0(base), (e: Error) => e instanceof UserError && /already exists; pass --resume/.test(e.message));
    // Resuming it as a ResNet-12 is refused: another architecture.
    await assert.rejects(trainGen0({ ...tinyResnet(out), resume: true } as TrainOptions), (e: Error) => e instanceof UserError && /different network \(architecture conv4 instead of resnet12/.test(e.message));
    await assert.rejects(
      trainGen0({ ...base, epochs: 2, learningRate: 1e30, resume: true } as TrainOptions),
      (e: Error) => e instanceof UserError && /training stopped: the (loss|weights) became .*last good checkpoint, .*gen0\.safetensors \(epoch 1\), is kept/.test(e.message),
    );
    assert.deepEqual(await readFile(path), good, 'the checkpoint is untouched');
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('skd train rejects unknown names and data folders without the dataset, in one line', async () => {
  const out = await tempDir();
  try {
    const unknown = await runSkd(['train', 'gen0', '--dataset', 'CIFAR-10', '--out', out]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /Invalid values[\s\S]*dataset[\s\S]*CIFAR-10/);
    const empty = await runSkd(['train', 'gen0', '--dataset', 'CIFAR-FS', '--data-root', out, '--out', join(out, 'run'), '--backend', 'wasm']);
    assert.notEqual(empty.code, 0);
    assert.match(empty.stderr, /CIFAR-FS|train\.pickle/);
    assert.doesNotMatch(empty.stderr, /\n\s+at /, 'no stack trace');
    await assert.rejects(trainGen0({ dataset: 'toy', widths: [8, 16], out: join(out, 'w') }), /--widths for resnet12 needs 4 numbers, got 2/);
    await assert.rejects(trainGen0({ dataset: 'toy', model: 'vgg' as 'conv4', out: join(out, 'm') }), /unknown model "vgg"/);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
