/** Chunked reading of large dataset files: the chunked path (forced with a small chunk size) gives the same pixels. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { augmentBatch, normalizeBatch } from '../data/augment.js';
import { CIFAR_NORMALIZATION, imageSetFromPickle, imageSetFromTiered, loadDataset } from '../data/datasets.js';
import { ImageStore } from '../data/pixels.js';
import { Rng } from '../data/rng.js';
import { summarizeImageSet } from '../data/stats.js';
import type { ImageSet } from '../data/types.js';
import { writeDatasetPickle } from './helpers/pickle-writer.js';
import { FIXTURES } from './helpers/run-skd.js';

const DATASETS = join(FIXTURES, 'datasets');
const dir = mkdtempSync(join(tmpdir(), 'skd-large-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A plain Uint8Array view (Buffer and Uint8Array differ for deepEqual). */
const u8 = (b: Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.length);

function assertSamePixels(chunked: ImageSet, whole: ImageSet): void {
  assert.equal(whole.images.chunks.length, 1);
  assert.ok(chunked.images.chunks.length > 1, `the chunked path was taken (${chunked.images.chunks.length} chunk)`);
  assert.equal(chunked.count, whole.count);
  assert.deepEqual(chunked.labels, whole.labels);
  assert.deepEqual(chunked.classNames, whole.classNames);
  for (let i = 0; i < whole.count; i++) assert.deepEqual(u8(chunked.images.image(i)), u8(whole.images.image(i)), `image ${i}`);
  assert.deepEqual(u8(chunked.images.all()), u8(whole.images.all()));
}

test('a pickle larger than the chunk size is parsed through a window, its pixels read into chunks: same pixels as the whole-file reader', () => {
  const count = 50;
  const pixels = new Uint8Array(count * 32 * 32 * 3).map((_, i) => (i * 2654435761) >>> 24);
  const labels = Array.from({ length: count }, (_, i) => 10 + (i % 7) * 3);
  const file = join(dir, 'train.pickle');
  writeDatasetPickle(file, pixels, 32, labels);
  const whole = imageSetFromPickle(file, 'CIFAR-FS', 'train');
  // 10 000-byte chunks: 3 images each, and a 10 000-byte parse window (the file is 150 KB).
  const chunked = imageSetFromPickle(file, 'CIFAR-FS', 'train', undefined, { chunkBytes: 10_000 });
  assertSamePixels(chunked, whole);
  assert.equal(chunked.images.imagesPerChunk, 3);
  assert.deepEqual(u8(whole.images.all()), pixels);
  // The published fixtures (protocol 2 and 4, miniImageNet with catname2label) too.
  for (const [name, f] of [['CIFAR-FS', 'CIFAR-FS/train.pickle'], ['CIFAR-FS', 'CIFAR-FS/py3_protocol4.pickle'], ['miniImageNet', 'miniImageNet/miniImageNet_category_split_val.pickle']]) {
    assertSamePixels(imageSetFromPickle(join(DATASETS, f), name, 'x', undefined, { chunkBytes: 50_000 }), imageSetFromPickle(join(DATASETS, f), name, 'x'));
  }
});

test('an npz is read straight into chunks of whole images: same pixels as one buffer', async () => {
  const whole = imageSetFromTiered(join(DATASETS, 'tieredImageNet', 'test_images.npz'), join(DATASETS, 'tieredImageNet', 'test_labels.pkl'), 'test');
  const chunked = await loadDataset({ dataset: 'tieredImageNet', dataRoot: DATASETS, split: 'test', chunkBytes: 21168 * 4 + 100 });
  assertSamePixels(chunked, whole);
  assert.equal(chunked.images.imagesPerChunk, 4);
});

test('augmentation, normalisation, statistics and episodes give the same results on chunked storage', () => {
  const whole = imageSetFromPickle(join(DATASETS, 'CIFAR-FS', 'train.pickle'), 'CIFAR-FS', 'train');
  const chunked: ImageSet = { ...whole, images: ImageStore.fromBytes(whole.images.all(), 3072, 3072 * 7) };
  assert.equal(chunked.images.chunks.length, Math.ceil(whole.count / 7));
  const indices = new Rng(4).permutation(whole.count).subarray(0, 40);
  const opts = { padding: 4, flip: true, jitter: 0.4, normalization: CIFAR_NORMALIZATION };
  assert.deepEqual(augmentBatch(chunked, indices, new Rng(9), opts), augmentBatch(whole, indices, new Rng(9), opts));
  assert.deepEqual(normalizeBatch(chunked, indices, CIFAR_NORMALIZATION), normalizeBatch(whole, indices, CIFAR_NORMALIZATION));
  assert.deepEqual(summarizeImageSet(chunked), summarizeImageSet(whole));
  // Images across a chunk boundary come back as one copy; within a chunk, as a view.
  assert.deepEqual(u8(chunked.images.images(5, 9)), u8(whole.images.all().subarray(5 * 3072, 9 * 3072)));
  assert.equal(chunked.images.images(7, 9).buffer, chunked.images.chunks[1].buffer);
});

test('ImageStore: chunks hold whole images, allocation splits at the chunk size', () => {
  const s = ImageStore.allocate(10, 12, 50);
  assert.deepEqual(s.chunks.map((c) => c.length), [48, 48, 24]);
  assert.equal(s.count, 10);
  s.image(9).fill(7);
  assert.deepEqual(Array.from(s.chunks[2].subarray(12)), new Array(12).fill(7));
  assert.throws(() => new ImageStore([new Uint8Array(10)], 12), /whole images/);
});
