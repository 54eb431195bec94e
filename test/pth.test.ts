import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { UserError } from '../data/errors.js';
import { exportOnnx } from '../export/onnx.js';
import { inferModelFromStateDict } from '../models/from-state-dict.js';
import type { NamedWeights } from '../models/spec.js';
import { readPthCheckpoint } from '../torch/checkpoint.js';
import { readTorchFile } from '../torch/pth.js';
import { readCheckpoint } from '../train/checkpoint.js';
import { writeDatasetPickle } from './helpers/pickle-writer.js';
import { maxRelative } from './helpers/compare.js';
import { FIXTURES, runSkd } from './helpers/run-skd.js';
import { zipBytes } from './helpers/zip-writer.js';

type Nested = number | Nested[];
const flat = (v: Nested): number[] => (Array.isArray(v) ? v.flatMap(flat) : [v]);
const reference = JSON.parse(readFileSync(join(FIXTURES, 'models', 'resnet12_w8-16-32-64_reference.json'), 'utf8')) as {
  input_nchw: Nested; features: Nested; logits: Nested; rot_logits: Nested;
};
const PTH = join(FIXTURES, 'pth');
const pth = (kind: string): string => join(PTH, `resnet12_w8-16-32-64_${kind}.pth`);
const CIFAR = { mean: [0.5071, 0.4867, 0.4408], std: [0.2675, 0.2565, 0.2761] } as { mean: [number, number, number]; std: [number, number, number] };
const dir = mkdtempSync(join(tmpdir(), 'skd-pth-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const expectUserError = (fn: () => unknown, re: RegExp): void => {
  assert.throws(fn, (e: Error) => e instanceof UserError && re.test(e.message) && !e.message.includes('\n'), `expected a one-line UserError matching ${re}`);
};

for (const [kind, format, dtype, tolerance] of [['zip', 'zip', 'float32', 1e-4], ['legacy', 'legacy', 'float32', 1e-4], ['dataparallel', 'zip', 'float32', 1e-4], ['fp16', 'zip', 'float16', 1e-2]] as const) {
  test(`.pth (${kind}): the architecture is inferred, and the exported graph reproduces the reference within ${tolerance}`, async () => {
    const ckpt = readPthCheckpoint(pth(kind));
    assert.equal(ckpt.format, format);
    assert.equal(ckpt.dtype, dtype);
    assert.deepEqual([ckpt.spec.arch, ckpt.spec.widths, ckpt.spec.numClasses, ckpt.spec.imageSize], ['resnet12', [8, 16, 32, 64], 10, 32]);
    assert.ok(![...ckpt.weights.keys()].some((n) => n.startsWith('module.') || n.endsWith('num_batches_tracked')));
    assert.deepEqual(ckpt.notes, []);
    const bytes = exportOnnx({ spec: ckpt.spec, weights: ckpt.weights, outputs: ['features', 'logits', 'rot_logits'], normalization: CIFAR });
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
    const out = await session.run({ images: new ort.Tensor('float32', Float32Array.from(flat(reference.input_nchw)), [3, 3, 32, 32]) });
    for (const name of ['features', 'logits', 'rot_logits'] as const) {
      const err = maxRelative(out[name].data as Float32Array, flat(reference[name]));
      assert.ok(err < tolerance, `${name}: ${err} relative`);
    }
    await session.release();
  });
}

test('.pth: the reference\'s options become the training configuration; DataParallel and fp16 files have none', () => {
  const zip = readPthCheckpoint(pth('zip'));
  assert.equal(zip.config.dataset, 'CIFAR-FS');
  const opt = zip.config.pytorchOpt as Record<string, unknown>;
  assert.deepEqual([opt.model, opt.epochs, opt.lr_decay_epochs, opt.tags], ['resnet12_ssl', 65, [60], 'cifarfs,may30']);
  assert.equal(opt.model_path, 'backup', 'paths are recorded as base names');
  assert.equal(readPthCheckpoint(pth('dataparallel')).config.dataset, undefined);
  assert.equal(readPthCheckpoint(pth('dataparallel'), { dataset: 'miniImageNet' }).spec.imageSize, 84);
});

/** The zip fixture with its data.pkl replaced. */
function zipWithPickle(pickle: Uint8Array): Buffer {
  return zipBytes([{ name: 'evil/data.pkl', data: pickle }, { name: 'evil/version', data: Buffer.from('3\n') }]);
}

test('.pth: a pickle with any other global is refused, naming it, before anything runs', () => {
  const marker = join(dir, 'ran');
  // os.system('touch <marker>') as pickle writes it: GLOBAL, argument tuple, REDUCE.
  const cmd = Buffer.from(`touch ${marker}`, 'utf8');
  const evil = Buffer.concat([Buffer.from('\x80\x02cposix\nsystem\nX', 'latin1'), Buffer.from(Uint32Array.of(cmd.length).buffer), cmd, Buffer.from('\x85R.', 'latin1')]);
  const zipFile = join(dir, 'evil_zip.pth');
  writeFileSync(zipFile, zipWithPickle(evil));
  expectUserError(() => readPthCheckpoint(zipFile), /evil_zip\.pth.*posix\.system.*expected only what torch\.save writes/);
  // The legacy format: the fixture's magic number, protocol and system-info pickles, then the evil one.
  const legacy = readFileSync(pth('legacy'));
  const legacyFile = join(dir, 'evil_legacy.pth');
  writeFileSync(legacyFile, Buffer.concat([legacy.subarray(0, 137), evil]));
  expectUserError(() => readPthCheckpoint(legacyFile), /evil_legacy\.pth.*posix\.system/);
  // Globals that are harmless elsewhere but not what torch.save writes, and calls of a storage class.
  const builtinsEval = Buffer.from('\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R.', 'latin1');
  writeFileSync(zipFile, zipWithPickle(builtinsEval));
  expectUserError(() => readPthCheckpoint(zipFile), /builtins\.eval/);
  writeFileSync(zipFile, zipWithPickle(Buffer.from('\x80\x02ctorch\nFloatStorage\n)R.', 'latin1')));
  expectUserError(() => readPthCheckpoint(zipFile), /calls torch\.FloatStorage directly/);
  assert.equal(existsSync(marker), false);
});

test('.pth: corrupt files, other architectures and non-checkpoints are one clear line', () => {
  // A flipped byte in a weight: the CRC-32 of the storage entry catches it.
  const good = readFileSync(pth('zip'));
  const flipped = Buffer.from(good);
  const at = good.indexOf(Buffer.from('data/0')) + 'data/0'.length + 100;
  flipped[at] ^= 0xff;
  const corrupt = join(dir, 'flipped.pth');
  writeFileSync(corrupt, flipped);
  expectUserError(() => readTorchFile(corrupt), /flipped\.pth: entry ".*" fails its CRC-32 check/);
  const text = join(dir, 'notes.pth');
  writeFileSync(text, 'hello');
  expectUserError(() => readPthCheckpoint(text), /notes\.pth: not a PyTorch checkpoint/);
  expectUserError(() => readPthCheckpoint(join(dir, 'missing.pth')), /checkpoint not found: .*missing\.pth/);
  // WRN-28-10 and ResNet-18 names are recognised and refused as unsupported.
  const t = (shape: number[]) => ({ data: new Float32Array(shape.reduce((a, b) => a * b, 1)), shape });
  const wrn: NamedWeights = new Map([['conv1.weight', t([16, 3, 3, 3])], ['block1.layer.0.bn1.weight', t([16])], ['block1.layer.0.conv1.weight', t([160, 16, 3, 3])], ['fc.weight', t([64, 640])]]);
  assert.throws(() => inferModelFromStateDict(wrn, 32), /Wide ResNet \(WRN-28-10\).*not supported/);
  const r18: NamedWeights = new Map([['layer1.0.conv1.weight', t([64, 3, 3, 3])], ['layer1.1.conv1.weight', t([64, 64, 3, 3])]]);
  assert.throws(() => inferModelFromStateDict(r18, 32), /ResNet-18\/24.*not supported/);
  // RFS names (layer1.0.conv1) and a missing rotation head are read, with a note.
  const ref = readPthCheckpoint(pth('zip')).weights;
  const rfs: NamedWeights = new Map([...ref].filter(([n]) => !n.startsWith('rot_')).map(([n, v]) => [n.replace(/^(layer\d)\./, '$1.0.').replace(/^(layer\d)\.0\.(downsample)/, '$1.0.$2'), v]));
  const inferred = inferModelFromStateDict(rfs, 32);
  assert.deepEqual(inferred.spec.widths, [8, 16, 32, 64]);
  assert.ok(inferred.notes.some((n) => /no rotation head/.test(n)));
  assert.deepEqual(inferred.weights.get('layer3.conv2.weight')!.data, ref.get('layer3.conv2.weight')!.data);
});

test('skd export --checkpoint model.pth (verified), skd inspect model.pth, skd eval --model model.pth', async () => {
  const out = join(dir, 'zip.onnx');
  const exp = await runSkd(['export', '--checkpoint', pth('zip'), '--out', out, '--verify', '--verify-images', '0', '--outputs', 'features,logits']);
  assert.equal(exp.code, 0, exp.stderr);
  assert.match(exp.stderr, /PyTorch zip format, float32, resnet12 widths 8-16-32-64, 10 classes/);
  assert.match(exp.stderr, /verify: .*features max abs/);
  assert.ok(existsSync(out));
  // No dataset recorded in a DataParallel file: the export asks for one.
  const noDataset = await runSkd(['export', '--checkpoint', pth('dataparallel'), '--out', join(dir, 'dp.onnx')]);
  assert.notEqual(noDataset.code, 0);
  assert.match(noDataset.stderr, /names no dataset; pass --dataset/);
  assert.doesNotMatch(noDataset.stderr, /\n\s+at /);

  const inspect = await runSkd(['inspect', pth('legacy'), '--json']);
  assert.equal(inspect.code, 0, inspect.stderr);
  const info = JSON.parse(inspect.stdout) as { format: string; arch: string; widths: number[]; numClasses: number; tensors: unknown[]; opt: Record<string, unknown> };
  assert.deepEqual([info.format, info.arch, info.widths, info.numClasses, info.tensors.length, info.opt.model], ['legacy', 'resnet12', [8, 16, 32, 64], 10, 84, 'resnet12_ssl']);

  // eval on the .pth (exported in memory) gives the same report as eval on the exported file.
  const evalArgs = ['--dataset', 'CIFAR-FS', '--data-root', join(FIXTURES, 'datasets', 'CIFAR-FS'), '--n_ways', '3', '--n_shots', '1', '--n_queries', '3', '--n_test_runs', '4', '--json', '--device', 'cpu'];
  const fromPth = await runSkd(['eval', '--model', pth('zip'), ...evalArgs]);
  assert.equal(fromPth.code, 0, fromPth.stderr);
  const fromOnnx = await runSkd(['eval', '--model', out, ...evalArgs]);
  assert.equal(fromOnnx.code, 0, fromOnnx.stderr);
  const a = JSON.parse(fromPth.stdout) as { episodes: unknown; mean: number };
  const b = JSON.parse(fromOnnx.stdout) as { episodes: unknown; mean: number };
  assert.equal(a.mean, b.mean);
});

test('skd train gen1 --path_t model.pth: a Gen-1 student starts from the PyTorch teacher', async () => {
  // A CIFAR-FS-shaped training split with the teacher's 10 classes.
  const data = join(dir, 'cifar10cls');
  mkdirSync(data);
  const n = 40;
  const pixels = new Uint8Array(n * 32 * 32 * 3).map((_, i) => (i * 2654435761) >>> 24);
  writeDatasetPickle(join(data, 'train.pickle'), pixels, 32, Array.from({ length: n }, (_, i) => i % 10));
  const out = join(dir, 'gen1');
  const r = await runSkd(['train', 'gen1', '--path_t', pth('zip'), '--data-root', data, '--epochs', '1', '--max-steps-per-epoch', '1', '--batch_size', '8', '--val-every', '0', '--out', out, '--backend', 'wasm', '--threads', '1'], { timeoutMs: 300_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /teacher .*PyTorch zip format/);
  const student = await readCheckpoint(join(out, 'gen1.safetensors'));
  assert.equal(student.generation, 1);
  assert.equal(student.config.dataset, 'CIFAR-FS', 'the dataset comes from the teacher\'s options');
  assert.deepEqual([student.spec.arch, student.spec.widths, student.spec.numClasses], ['resnet12', [8, 16, 32, 64], 10]);
  // One step away from the teacher's weights: close to them, not equal.
  const teacher = readPthCheckpoint(pth('zip')).weights.get('layer1.conv1.weight')!.data;
  const s = student.weights.get('layer1.conv1.weight')!.data;
  let diff = 0;
  for (let i = 0; i < s.length; i++) diff = Math.max(diff, Math.abs(s[i] - teacher[i]));
  assert.ok(diff > 0 && diff < 0.5, `student moved ${diff} from the teacher`);
});
