import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { datasetImageSize, datasetNormalization, datasetPadding, imageSetFromPickle, imageSetFromTiered, loadDataset, type DatasetName } from '../data/datasets.js';
import { UserError } from '../data/errors.js';
import { discoverSplits } from '../data/discover.js';
import { FIXTURES } from './helpers/run-skd.js';
import { pickleDict, writeDatasetPickle } from './helpers/pickle-writer.js';
import type { ImageSet } from '../data/types.js';

const DATASETS = join(FIXTURES, 'datasets');

interface ManifestEntry { n: number; classes: number[]; pixel_sum: number }
function manifest(name: string): Record<string, ManifestEntry> {
  return JSON.parse(readFileSync(join(DATASETS, name, 'manifest.json'), 'utf8'));
}

function pixelSum(set: ImageSet): number {
  let s = 0;
  for (let i = 0; i < set.images.all().length; i++) s += set.images.all()[i];
  return s;
}

function checkAgainst(set: ImageSet, m: ManifestEntry, size: number): void {
  assert.equal(set.count, m.n);
  assert.deepEqual(set.originalIds, m.classes);
  assert.equal(pixelSum(set), m.pixel_sum);
  assert.equal(set.images.all().length, m.n * size * size * 3);
  assert.equal(set.labels.length, m.n);
  assert.equal(set.height, size);
  assert.equal(set.width, size);
  // Labels are 0..k-1 in first-appearance order.
  let next = 0;
  for (const l of set.labels) {
    assert.ok(l <= next, 'labels appear in increasing first-appearance order');
    if (l === next) next++;
  }
  assert.equal(next, m.classes.length);
}

test('CIFAR-FS fixtures (protocol 2 and protocol 4) match the manifest exactly', async () => {
  const m = manifest('CIFAR-FS');
  for (const split of Object.keys(m)) {
    const set = await loadDataset({ dataset: 'CIFAR-FS', dataRoot: DATASETS, split });
    checkAgainst(set, m[split], 32);
    assert.equal(set.name, 'CIFAR-FS');
    assert.equal(set.split, split);
  }
});

test('miniImageNet fixtures match the manifest, class names come from catname2label', async () => {
  const m = manifest('miniImageNet');
  const files: Record<string, string> = { train: 'miniImageNet_category_split_train_phase_train.pickle', val: 'miniImageNet_category_split_val.pickle', test: 'miniImageNet_category_split_test.pickle' };
  for (const [split, file] of Object.entries(files)) {
    const set = await loadDataset({ dataset: 'miniImageNet', dataRoot: join(DATASETS, 'miniImageNet'), split });
    checkAgainst(set, m[file], 84);
    assert.match(set.classNames[0], /^n\d{8}$/);
  }
});

test('tieredImageNet npz + pkl fixtures match the manifest', async () => {
  const m = manifest('tieredImageNet');
  for (const split of Object.keys(m)) checkAgainst(await loadDataset({ dataset: 'tieredImageNet', dataRoot: DATASETS, split }), m[split], 84);
});

test('normalisation, image size and padding per dataset follow the reference', () => {
  assert.deepEqual(datasetNormalization('CIFAR-FS').mean, [0.5071, 0.4867, 0.4408]);
  assert.deepEqual(datasetNormalization('toy').std, [0.2675, 0.2565, 0.2761]);
  assert.ok(Math.abs(datasetNormalization('miniImageNet').mean[0] - 120.39586422 / 255) < 1e-12);
  assert.ok(Math.abs(datasetNormalization('tieredImageNet').std[2] - 72.54505529 / 255) < 1e-12);
  const sizes: [DatasetName, number, number][] = [['CIFAR-FS', 32, 4], ['FC100', 32, 4], ['toy', 32, 4], ['miniImageNet', 84, 8], ['tieredImageNet', 84, 8], ['folder', 84, 8]];
  for (const [name, size, pad] of sizes) {
    assert.equal(datasetImageSize(name), size);
    assert.equal(datasetPadding(name), pad);
  }
});

test('a written protocol-2 pickle round-trips, sparse labels remap in first-appearance order', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-data-'));
  try {
    const pixels = Uint8Array.from({ length: 5 * 4 * 4 * 3 }, (_, i) => (i * 7) % 256);
    const file = join(dir, 'train.pickle');
    writeDatasetPickle(file, pixels, 4, [70, 3, 70, 99, 3]);
    const set = imageSetFromPickle(file, 'FC100', 'train');
    assert.deepEqual(Array.from(set.labels), [0, 1, 0, 2, 1]);
    assert.deepEqual(set.originalIds, [70, 3, 99]);
    assert.deepEqual(set.classNames, ['70', '3', '99']);
    assert.deepEqual(Array.from(set.images.all()), Array.from(pixels));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function expectUserError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

test('bad dataset files give one UserError naming the file and what was expected', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-data-'));
  try {
    const good = readFileSync(join(DATASETS, 'CIFAR-FS', 'val.pickle'));
    const at = (name: string, bytes: Uint8Array): string => { const p = join(dir, name); writeFileSync(p, bytes); return p; };
    // missing file
    await assert.rejects(loadDataset({ dataset: 'CIFAR-FS', dataRoot: dir, split: 'train' }), (e: Error) => e instanceof UserError && /train\.pickle not found/.test(e.message));
    // truncated
    const truncated = at('truncated.pickle', good.subarray(0, good.length >> 1));
    expectUserError(() => imageSetFromPickle(truncated, 'CIFAR-FS', 'x'), /truncated\.pickle.*truncated/);
    // not a pickle at all
    const text = at('notes.pickle', Buffer.from('hello, this is not a pickle'));
    expectUserError(() => imageSetFromPickle(text, 'CIFAR-FS', 'x'), /notes\.pickle is not a pickle/);
    // a foreign pickle that would run code
    const evil = at('evil.pickle', Buffer.from('\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.', 'latin1'));
    expectUserError(() => imageSetFromPickle(evil, 'CIFAR-FS', 'x'), /evil\.pickle.*os\.system/);
    // a pickle that is not a dict
    const list = at('list.pickle', Buffer.from('\x80\x02]q\x00(K\x01K\x02e.', 'latin1'));
    expectUserError(() => imageSetFromPickle(list, 'CIFAR-FS', 'x'), /list\.pickle.*holds a list, expected a dict/);
    // wrong dtype
    const f4 = at('float.pickle', pickleDict({ data: { shape: [2, 4, 4, 3], descr: '<f4', bytes: new Uint8Array(2 * 48 * 4) }, labels: [1, 2] }));
    expectUserError(() => imageSetFromPickle(f4, 'CIFAR-FS', 'x'), /float\.pickle: 'data' has dtype <?f4, expected uint8/);
    // wrong shape (grey images)
    const grey = at('grey.pickle', pickleDict({ data: { shape: [2, 4, 4], descr: '|u1', bytes: new Uint8Array(32) }, labels: [1, 2] }));
    expectUserError(() => imageSetFromPickle(grey, 'CIFAR-FS', 'x'), /grey\.pickle: 'data' has shape \(2, 4, 4\), expected uint8 images \[N, H, W, 3\]/);
    // labels that do not match the images
    const short = at('short.pickle', pickleDict({ data: { shape: [3, 4, 4, 3], descr: '|u1', bytes: new Uint8Array(144) }, labels: [1, 2] }));
    expectUserError(() => imageSetFromPickle(short, 'CIFAR-FS', 'x'), /short\.pickle: 2 labels for 3 images/);
    // no labels
    const nolabels = at('nolabels.pickle', pickleDict({ data: { shape: [1, 4, 4, 3], descr: '|u1', bytes: new Uint8Array(48) } }));
    expectUserError(() => imageSetFromPickle(nolabels, 'CIFAR-FS', 'x'), /nolabels\.pickle: 'labels' is missing/);
    // no images
    const empty = at('empty.pickle', pickleDict({ data: { shape: [0, 4, 4, 3], descr: '|u1', bytes: new Uint8Array(0) }, labels: [] }));
    expectUserError(() => imageSetFromPickle(empty, 'CIFAR-FS', 'x'), /empty\.pickle: 'data' holds no images/);
    // byte count that does not match the shape
    const lying = at('lying.pickle', pickleDict({ data: { shape: [2, 4, 4, 3], descr: '|u1', bytes: new Uint8Array(50) }, labels: [1, 2] }));
    expectUserError(() => imageSetFromPickle(lying, 'CIFAR-FS', 'x'), /lying\.pickle: numpy array of shape \(2, 4, 4, 3\) has 50 bytes, expected 96/);
    // size other than asked for
    await assert.rejects(loadDataset({ dataset: 'CIFAR-FS', dataRoot: DATASETS, split: 'val', imageSize: 84 }), /val\.pickle: 'data' has 32x32 images, expected 84x84/);
    // tieredImageNet: a truncated npz and an npz whose labels do not match
    const tdir = join(dir, 'tiered');
    const { mkdirSync, copyFileSync } = await import('node:fs');
    mkdirSync(tdir);
    const npz = readFileSync(join(DATASETS, 'tieredImageNet', 'test_images.npz'));
    writeFileSync(join(tdir, 'test_images.npz'), npz.subarray(0, npz.length - 100));
    copyFileSync(join(DATASETS, 'tieredImageNet', 'test_labels.pkl'), join(tdir, 'test_labels.pkl'));
    await assert.rejects(loadDataset({ dataset: 'tieredImageNet', dataRoot: tdir, split: 'test' }), (e: Error) => e instanceof UserError && /test_images\.npz: not an \.npz \(zip\) archive, or it is truncated/.test(e.message));
    copyFileSync(join(DATASETS, 'tieredImageNet', 'test_images.npz'), join(tdir, 'test_images.npz'));
    copyFileSync(join(DATASETS, 'tieredImageNet', 'train_labels.pkl'), join(tdir, 'test_labels.pkl'));
    writeFileSync(join(tdir, 'test_labels.pkl'), pickleDict({ labels: [1, 2, 3] }));
    await assert.rejects(loadDataset({ dataset: 'tieredImageNet', dataRoot: tdir, split: 'test' }), (e: Error) => e instanceof UserError && /test_labels\.pkl: 3 labels for the 15 images of test_images\.npz/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('protocol-5 pickles with numpy scalar labels, Python 3 protocol-2 bytes and deflated npz archives load', async () => {
  const dir = join(FIXTURES, 'data-extra');
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const p5 = imageSetFromPickle(join(dir, 'py3_protocol5_npscalars.pickle'), 'miniImageNet', 'x');
  assert.equal(p5.count, m.n);
  assert.deepEqual(p5.originalIds, m.classes);
  assert.deepEqual(p5.classNames, ['n07', 'n02', 'n09']);
  assert.deepEqual(Array.from(p5.labels), [0, 0, 1, 2, 1, 2]);
  assert.deepEqual(Array.from(p5.images.all().subarray(0, 12)), m.first_pixels);
  const npz = imageSetFromTiered(join(dir, 'deflated_images.npz'), join(dir, 'deflated_labels.pkl'), 'x');
  assert.deepEqual(npz.originalIds, m.classes);
  assert.equal(pixelSum(npz), m.pixel_sum);
  assert.equal(pixelSum(p5), m.pixel_sum);
});

test('discoverSplits reads a folder of dataset folders, one split or all', async () => {
  const all = await discoverSplits(DATASETS);
  assert.deepEqual(all.map((l) => `${l.set.name}/${l.set.split}`), [
    'CIFAR-FS/py3_protocol4', 'CIFAR-FS/test', 'CIFAR-FS/train', 'CIFAR-FS/val',
    'miniImageNet/test', 'miniImageNet/train_phase_train', 'miniImageNet/val',
    'tieredImageNet/test', 'tieredImageNet/train',
  ]);
  const val = await discoverSplits(DATASETS, { split: 'val' });
  assert.deepEqual(val.map((l) => [l.set.name, l.set.count]), [['CIFAR-FS', 60], ['miniImageNet', 20]]);
  await assert.rejects(discoverSplits(DATASETS, { split: 'nope' }), (e: Error) => e instanceof UserError && /no dataset folder has a split "nope"/.test(e.message));
});
