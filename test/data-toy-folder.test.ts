import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadDataset } from '../data/datasets.js';
import { UserError } from '../data/errors.js';
import { loadImageFolder } from '../data/folder.js';
import { generateToy } from '../data/toy.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

test('toy: splits have 64/16/20 classes, same seed gives the same bytes, another seed differs', () => {
  const a = generateToy({ split: 'test', seed: 5, imagesPerClass: 6 });
  const b = generateToy({ split: 'test', seed: 5, imagesPerClass: 6 });
  const c = generateToy({ split: 'test', seed: 6, imagesPerClass: 6 });
  assert.equal(sha(a.images.all()), sha(b.images.all()));
  assert.notEqual(sha(a.images.all()), sha(c.images.all()));
  assert.deepEqual(a.classNames, b.classNames);
  assert.equal(a.count, 120);
  assert.equal(a.images.all().length, 120 * 32 * 32 * 3);
  assert.deepEqual(a.originalIds, Array.from({ length: 20 }, (_, k) => 80 + k));
  const counts = { train: 64, val: 16, test: 20, trainval: 80 } as Record<string, number>;
  for (const split of Object.keys(counts)) assert.equal(generateToy({ split, imagesPerClass: 1 }).classNames.length, counts[split]);
  // a class's images do not depend on how many are generated after them
  const more = generateToy({ split: 'test', seed: 5, imagesPerClass: 8 });
  assert.equal(sha(more.images.all().subarray(0, 6 * 3072)), sha(a.images.all().subarray(0, 6 * 3072)));
  assert.throws(() => generateToy({ split: 'holdout' }), UserError);
});

test('toy: the bytes for seed 0 are pinned (a change to the generator changes every trained toy result)', () => {
  const set = generateToy({ split: 'test', seed: 0, imagesPerClass: 2 });
  assert.equal(sha(set.images.all()), '813255255d98f28ebf5ad00bd8de1a274072ed9e8869ac792316468eaf603007');
  assert.equal(set.classNames[0], '080-bowl-h216-sun-left');
});

test('toy: images vary within a class, and the scenes are not rotation invariant', () => {
  const set = generateToy({ split: 'train', seed: 0, imagesPerClass: 20 });
  const n = 3072;
  const first = set.images.all().subarray(0, n);
  for (let i = 1; i < 20; i++) assert.notEqual(sha(set.images.all().subarray(i * n, (i + 1) * n)), sha(first));
  // Upright scenes are brighter at the top than at the bottom on average (sky over ground).
  let top = 0;
  let bottom = 0;
  for (let i = 0; i < set.count; i++) {
    for (let x = 0; x < 32 * 3; x++) {
      top += set.images.all()[i * n + x] + set.images.all()[i * n + 96 + x];
      bottom += set.images.all()[i * n + 30 * 96 + x] + set.images.all()[i * n + 31 * 96 + x];
    }
  }
  assert.ok(top > bottom * 1.2, `top ${top} vs bottom ${bottom}`);
});

test('toy through loadDataset, with imagesPerClass and another image size', async () => {
  const set = await loadDataset({ dataset: 'toy', split: 'val', toy: { seed: 1, imagesPerClass: 2 }, imageSize: 20 });
  assert.equal(set.count, 32);
  assert.equal(set.height, 20);
  assert.equal(set.images.all().length, 32 * 20 * 20 * 3);
});

test('image folders: sorted classes and files, resized with cover; bad folders and files are named', async () => {
  const root = mkdtempSync(join(tmpdir(), 'skd-folder-'));
  try {
    const solid = (r: number, g: number, b: number, w: number, h: number): ReturnType<typeof sharp> => sharp({ create: { width: w, height: h, channels: 3, background: { r, g, b } } });
    mkdirSync(join(root, 'train', 'zebra'), { recursive: true });
    mkdirSync(join(root, 'train', 'apple'), { recursive: true });
    await solid(255, 0, 0, 40, 30).png().toFile(join(root, 'train', 'apple', 'b.png'));
    await solid(0, 255, 0, 20, 20).jpeg({ quality: 100 }).toFile(join(root, 'train', 'apple', 'a.jpg'));
    await solid(0, 0, 255, 64, 16).webp({ lossless: true }).toFile(join(root, 'train', 'zebra', 'z.webp'));
    writeFileSync(join(root, 'train', 'zebra', 'notes.txt'), 'not an image');
    const set = await loadImageFolder(root, 'train', 16);
    assert.deepEqual(set.classNames, ['apple', 'zebra']);
    assert.deepEqual(Array.from(set.labels), [0, 0, 1]);
    assert.equal(set.images.all().length, 3 * 16 * 16 * 3);
    const px = (i: number): number[] => Array.from(set.images.all().subarray(i * 768, i * 768 + 3));
    assert.ok(px(0)[1] > 240 && px(0)[0] < 15, `a.jpg is green: ${px(0)}`);
    assert.deepEqual(px(1), [255, 0, 0]);
    assert.deepEqual(px(2), [0, 0, 255]);
    const viaLoader = await loadDataset({ dataset: 'folder', dataRoot: root, split: 'train', imageSize: 16 });
    assert.deepEqual(viaLoader.images.all(), set.images.all());

    mkdirSync(join(root, 'train', 'empty'));
    await assert.rejects(loadImageFolder(root, 'train', 16), (e: Error) => e instanceof UserError && /class folder .*empty has no images/.test(e.message));
    rmSync(join(root, 'train', 'empty'), { recursive: true });
    writeFileSync(join(root, 'train', 'zebra', 'broken.png'), Buffer.from('\x89PNG\r\n\x1a\nthis is not really a png', 'latin1'));
    await assert.rejects(loadImageFolder(root, 'train', 16), (e: Error) => e instanceof UserError && /broken\.png: cannot decode as an image/.test(e.message));
    await assert.rejects(loadImageFolder(root, 'test', 16), (e: Error) => e instanceof UserError && /test: cannot read/.test(e.message));
    assert.ok(readdirSync(root).length === 1);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
