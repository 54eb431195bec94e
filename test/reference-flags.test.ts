/**
 * The reference README's three command lines (train_supervised_ssl.py, train_distillation.py, eval_fewshot.py) run
 * under `skd train gen0`, `skd train gen1` and `skd eval` with only the paths changed (plus tiny sizes), and give
 * what the equivalent skd flags give.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCheckpoint, type Checkpoint } from '../train/checkpoint.js';
import { FIXTURES, runSkd } from './helpers/run-skd.js';

const DATA = join(FIXTURES, 'datasets');
/** Small enough for a test: a narrow ResNet-12, two steps of one epoch (appended: the last --epochs wins). */
const TINY = ['--widths', '4,8,8,8', '--batch_size', '32', '--max-steps-per-epoch', '2', '--backend', 'wasm', '--threads', '1'];
const EPOCHS = ['--epochs', '1'];

async function ok(args: string[]): Promise<string> {
  const r = await runSkd(args, { timeoutMs: 300_000 });
  assert.equal(r.code, 0, `skd ${args.join(' ')}\n${r.stderr}`);
  return r.stdout;
}

function assertSameWeights(a: Checkpoint, b: Checkpoint): void {
  assert.deepEqual([...a.weights.keys()], [...b.weights.keys()]);
  for (const [name, t] of a.weights) assert.deepEqual(t.data, b.weights.get(name)!.data, name);
  assert.deepEqual(a.history.map((r) => r.loss), b.history.map((r) => r.loss));
}

test('the reference command lines train, distil and evaluate exactly as the equivalent skd flags do', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-reference-'));
  try {
    const ref = join(dir, 'save', 'backup');
    const own = join(dir, 'runs');
    // train_supervised_ssl.py --tags cifarfs,may30 --model resnet12_ssl --model_path save/backup --dataset CIFAR-FS --data_root DATA
    //   --n_aug_support_samples 5 --n_ways 5 --n_shots 1 --epochs 65 --lr_decay_epochs 60 --gamma 2.0
    await ok(['train', 'gen0', '--tags', 'cifarfs,may30', '--model', 'resnet12_ssl', '--model_path', ref, '--dataset', 'CIFAR-FS', '--data_root', DATA,
      '--n_aug_support_samples', '5', '--n_ways', '5', '--n_shots', '1', '--epochs', '65', '--lr_decay_epochs', '60', '--gamma', '2.0', ...TINY, ...EPOCHS]);
    await ok(['train', 'gen0', '--model', 'resnet12', '--out', own, '--dataset', 'CIFAR-FS', '--data-root', DATA, ...EPOCHS, '--lr_decay_epochs', '60', '--gamma', '2', ...TINY]);
    const refGen0 = await readCheckpoint(join(ref, 'gen0.safetensors'));
    assertSameWeights(refGen0, await readCheckpoint(join(own, 'gen0.safetensors')));
    assert.deepEqual(refGen0.config.tags, ['cifarfs', 'may30'], '--tags is recorded in the checkpoint');
    assert.equal(refGen0.config.valWays, 5);
    assert.equal(refGen0.config.valShots, 1);
    assert.equal(refGen0.config.valAugSupportSamples, 5);

    // train_distillation.py --tags cifarfs,gen1,may30 --model_s resnet12_ssl --model_t resnet12_ssl --path_t save/backup/.../model.pth
    //   --model_path save/backup --dataset CIFAR-FS --data_root DATA --n_aug_support_samples 5 --n_ways 5 --n_shots 1 --epochs 65 --lr_decay_epochs 60 --gamma 0.1
    await ok(['train', 'gen1', '--tags', 'cifarfs,gen1,may30', '--model_s', 'resnet12_ssl', '--model_t', 'resnet12_ssl', '--path_t', join(ref, 'gen0.safetensors'),
      '--model_path', ref, '--dataset', 'CIFAR-FS', '--data_root', DATA, '--n_aug_support_samples', '5', '--n_ways', '5', '--n_shots', '1',
      '--epochs', '65', '--lr_decay_epochs', '60', '--gamma', '0.1', ...TINY, ...EPOCHS]);
    await ok(['train', 'gen1', '--path_t', join(own, 'gen0.safetensors'), '--out', own, '--dataset', 'CIFAR-FS', '--data-root', DATA,
      ...EPOCHS, '--lr_decay_epochs', '60', '--gamma', '0.1', ...TINY]);
    const refGen1 = await readCheckpoint(join(ref, 'gen1.safetensors'));
    assertSameWeights(refGen1, await readCheckpoint(join(own, 'gen1.safetensors')));
    assert.deepEqual(refGen1.config.tags, ['cifarfs', 'gen1', 'may30']);

    // eval_fewshot.py --model resnet12_ssl --model_path save/.../model.pth --dataset CIFAR-FS --data_root DATA --n_aug_support_samples 5 --n_ways 5 --n_shots 1
    const onnx = join(dir, 'gen1.onnx');
    await ok(['export', '--checkpoint', join(ref, 'gen1.safetensors'), '--out', onnx]);
    const episodes = ['--n_test_runs', '20', '--device', 'cpu', '--json'];
    const refEval = JSON.parse(await ok(['eval', '--model', 'resnet12_ssl', '--model_path', onnx, '--dataset', 'CIFAR-FS', '--data_root', DATA,
      '--n_aug_support_samples', '5', '--n_ways', '5', '--n_shots', '1', ...episodes]));
    const ownEval = JSON.parse(await ok(['eval', '--model', onnx, '--dataset', 'CIFAR-FS', '--data-root', DATA, ...episodes]));
    assert.deepEqual(refEval.accuracies, ownEval.accuracies);
    assert.equal(refEval.config.nAugSupportSamples, 5);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('train --n_ways, --n_shots, --n_queries and --n_aug_support_samples set the validation episodes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-reference-val-'));
  try {
    const out = JSON.parse(await ok(['train', 'gen0', '--dataset', 'CIFAR-FS', '--data_root', DATA, '--out', dir, '--val-every', '1', '--val-episodes', '4',
      '--n_ways', '3', '--n_shots', '2', '--n_queries', '5', '--n_aug_support_samples', '2', '--json', ...EPOCHS, ...TINY]));
    const val = out.history[0].val;
    assert.deepEqual({ ways: val.ways, shots: val.shots, queries: val.queries, aug: val.augSupportSamples, episodes: val.episodes }, { ways: 3, shots: 2, queries: 5, aug: 2, episodes: 4 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reference architecture names that skd does not build, or that disagree, end in one line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-reference-bad-'));
  try {
    const cases: [string[], RegExp][] = [
      [['train', 'gen0', '--model', 'wrn_28_10', '--model_path', dir], /--model wrn_28_10: WRN-28-10 is not supported; skd builds resnet12 .*resnet12_ssl.* conv4/],
      [['train', 'gen0', '--model', 'vgg13', '--out', dir], /--model vgg13: unknown architecture/],
      [['train', 'gen1', '--model_s', 'resnet12_ssl', '--model_t', 'convnet4', '--path_t', join(dir, 't.safetensors'), '--out', dir], /--model_s resnet12_ssl \(resnet12\), --model_t convnet4 \(conv4\): .*one architecture/],
      [['eval', '--model', 'resnet12_ssl', '--dataset', 'CIFAR-FS'], /--model resnet12_ssl names an architecture; give the file to evaluate with --model_path/],
      [['eval', '--model', 'wrn_28_10', '--model_path', join(dir, 'm.pth'), '--dataset', 'CIFAR-FS'], /WRN-28-10 is not supported/],
    ];
    for (const [args, pattern] of cases) {
      const r = await runSkd(args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a flag given twice: the last one wins (yargs alone would add 1 to a number whose last value is 1)', async () => {
  const model = join(FIXTURES, 'models', 'resnet12_w8-16-32-64_pytorch.onnx');
  const r = await runSkd(['eval', '--model', model, '--dataset', 'CIFAR-FS', '--data-root', DATA, '--layout', 'nchw', '--size', '32', '--device', 'cpu',
    '--n_test_runs', '5', '--n-test-runs', '1', '--output', 'logits', '--output=features', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.accuracies.length, 1);
  assert.equal(report.model.preprocessing.outputName, 'features');
});

test('--help says what the reference flags map to', async () => {
  const train = await runSkd(['train', 'gen1', '--help']);
  for (const flag of ['--model_path', '--tags', '--model_s', '--model_t', '--n_ways', '--n_shots', '--n_aug_support_samples', '--data_root']) assert.match(train.stdout, new RegExp(flag));
  assert.match(train.stdout, /resnet12_ssl/);
  const evalHelp = await runSkd(['eval', '--help']);
  assert.match(evalHelp.stdout, /--model_path/);
  assert.match(evalHelp.stdout, /resnet12_ssl/);
});
