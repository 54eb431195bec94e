/** Damaged and hostile dataset and checkpoint files: one clear line each, nothing loaded. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { deflateRawSync } from 'node:zlib';
import { imageSetFromPickle, imageSetFromTiered, loadDataset } from '../data/datasets.js';
import { UserError } from '../data/errors.js';
import { readNpzArray } from '../data/npz.js';
import { parsePickle } from '../data/pickle.js';
import { exportCheckpoint } from '../export/from-checkpoint.js';
import { resnet12Spec } from '../models/spec.js';
import { initWeights } from '../models/init.js';
import { readCheckpoint, writeCheckpoint } from '../train/checkpoint.js';
import { pickleDict } from './helpers/pickle-writer.js';
import { FIXTURES } from './helpers/run-skd.js';
import { npyBytes, writeZip, zipBytes } from './helpers/zip-writer.js';

const TIERED = join(FIXTURES, 'datasets', 'tieredImageNet');
const dir = mkdtempSync(join(tmpdir(), 'skd-hostile-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const isOneLine = (re: RegExp) => (e: Error): boolean => e instanceof UserError && re.test(e.message) && !e.message.includes('\n');

test('npz: a flipped data byte fails the CRC-32 check', () => {
  const good = readFileSync(join(TIERED, 'test_images.npz'));
  const bad = Buffer.from(good);
  bad[5000] ^= 0x01;
  const file = join(dir, 'flipped_images.npz');
  writeFileSync(file, bad);
  assert.throws(() => imageSetFromTiered(file, join(TIERED, 'test_labels.pkl'), 'test'), isOneLine(/flipped_images\.npz: entry "images\.npy" fails its CRC-32 check/));
  // A wrong CRC in the headers of a deflated entry too.
  const npy = npyBytes('|u1', '2, 4, 4, 3', new Uint8Array(96).fill(3));
  writeZip(file, [{ name: 'images.npy', data: npy, deflate: true, declaredCrc: 1234 }]);
  assert.throws(() => readNpzArray(file, 'images'), isOneLine(/fails its CRC-32 check/));
});

test('npz: a deflate bomb is cut off at the declared size, not inflated in full', () => {
  const file = join(dir, 'bomb.npz');
  // 64 MiB of zeros deflates to about 64 KiB; the headers claim 60 KiB.
  const payload = Buffer.concat([npyBytes('|u1', '1, 64, 64, 3', new Uint8Array(0)), Buffer.alloc(64 * 2 ** 20)]);
  writeZip(file, [{ name: 'images.npy', data: payload, deflate: true, declaredSize: 60 * 1024 }]);
  const rssBefore = process.memoryUsage().rss;
  assert.throws(() => readNpzArray(file, 'images'), isOneLine(/bomb\.npz: entry "images\.npy" inflates past the 61440 bytes the archive declares/));
  assert.ok(process.memoryUsage().rss - rssBefore < 48 * 2 ** 20, 'the payload was not inflated in full');
  // A declared size deflate cannot reach from the compressed bytes is refused before inflating.
  writeFileSync(file, zipBytes([{ name: 'images.npy', data: Buffer.alloc(100), deflate: true, declaredSize: 2 ** 31 }]));
  assert.throws(() => readNpzArray(file, 'images'), isOneLine(/declares 2147483648 bytes from \d+ compressed, more than deflate can produce/));
  void deflateRawSync;
});

test('npy and pickle headers with negative dimensions are refused', () => {
  const file = join(dir, 'negative_images.npz');
  writeZip(file, [{ name: 'images.npy', data: npyBytes('|u1', '2, -16, -16, 3', new Uint8Array(2 * 256 * 3)) }]);
  assert.throws(() => readNpzArray(file, 'images'), isOneLine(/shape \(2, -16, -16, 3\); dimensions must be whole numbers/));
  const pickle = join(dir, 'negative.pickle');
  writeFileSync(pickle, pickleDict({ data: { shape: [2, -4, -4, 3], descr: '|u1', bytes: new Uint8Array(96) }, labels: [0, 1] }));
  assert.throws(() => imageSetFromPickle(pickle, 'CIFAR-FS', 'x'), isOneLine(/negative\.pickle: numpy array of shape \(2, -4, -4, 3\); dimensions must be whole numbers/));
});

test('a pickle list of 500k items (one ADDITEMS, one APPENDS) parses', () => {
  const n = 500_000;
  for (const [open, close] of [[[0x8f, 0x28], [0x90]], [[0x5d, 0x28], [0x65]]]) {
    const bytes = new Uint8Array(3 + open.length + 2 * n + close.length + 1);
    bytes.set([0x80, 2, ...open]);
    let p = 2 + open.length;
    for (let i = 0; i < n; i++) { bytes[p++] = 0x4b; bytes[p++] = i & 255; }
    bytes.set([...close, 0x2e], p);
    const v = parsePickle(bytes.subarray(0, p + close.length + 1), 'big.pickle');
    assert.ok(Array.isArray(v) && v.length === n);
  }
});

test('a checkpoint whose config is null is one clear line, in read and in export', async () => {
  const spec = resnet12Spec({ widths: [4, 4, 4, 4], numClasses: 3 });
  const path = join(dir, 'gen0.safetensors');
  await writeCheckpoint(path, {
    formatVersion: 1, spec, weights: initWeights(spec, 0), epoch: 1, step: 1, rng: { seed: 0, draws: 0 } as never, dropBlockCalls: 0,
    config: null as never, generation: 0, complete: true, history: [],
  });
  await assert.rejects(readCheckpoint(path), isOneLine(/gen0\.safetensors: checkpoint metadata "config" should be a JSON object, got null/));
  await assert.rejects(exportCheckpoint({ checkpoint: path, out: join(dir, 'm.onnx') }), isOneLine(/"config" should be a JSON object/));
});

test('a symbolic-link loop at split or class level is one line naming the folder', async () => {
  const root = join(dir, 'loops');
  mkdirSync(join(root, 'val', 'cat'), { recursive: true });
  symlinkSync('train', join(root, 'train'));
  await assert.rejects(loadDataset({ dataset: 'folder', dataRoot: root, split: 'train' }), isOneLine(/loops\/train: cannot read: a loop of symbolic links \(ELOOP\)/));
  symlinkSync('dog', join(root, 'val', 'dog'));
  await assert.rejects(loadDataset({ dataset: 'folder', dataRoot: root, split: 'val' }), isOneLine(/loops\/val\/dog: cannot read: a loop of symbolic links \(ELOOP\)/));
});
