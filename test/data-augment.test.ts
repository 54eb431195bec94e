import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { augmentBatch, normalizeBatch, normalizePixels, rotateBatch, type AugmentOptions } from '../data/augment.js';
import { CIFAR_NORMALIZATION } from '../data/datasets.js';
import { Rng } from '../data/rng.js';
import type { ImageSet } from '../data/types.js';
import { FIXTURES } from './helpers/run-skd.js';
import { ImageStore } from '../data/pixels.js';

function randomSet(count: number, size: number, seed: number): ImageSet {
  const r = new Rng(seed);
  const images = new Uint8Array(count * size * size * 3);
  for (let i = 0; i < images.length; i++) images[i] = r.randint(256);
  return { name: 'random', split: 'train', images: ImageStore.fromBytes(images, size * size * 3), count, height: size, width: size, channels: 3, labels: new Int32Array(count), classNames: ['0'], originalIds: [0] };
}

const TRAIN: AugmentOptions = { padding: 4, flip: true, jitter: 0.4, normalization: CIFAR_NORMALIZATION };
const lut = (v: number, c: number): number => (Math.fround(v / 255) - Math.fround(CIFAR_NORMALIZATION.mean[c])) / Math.fround(CIFAR_NORMALIZATION.std[c]);

test('rotations match the reference fixture exactly', () => {
  const fx = JSON.parse(readFileSync(join(FIXTURES, 'rotations', 'rot.json'), 'utf8'));
  const flat = (a: unknown): number[] => (a as unknown[]).flat(3) as number[];
  const x = Float32Array.from(flat(fx.x_nhwc));
  const [n, h, w, c] = [fx.x_nhwc.length, fx.x_nhwc[0].length, fx.x_nhwc[0][0].length, fx.x_nhwc[0][0][0].length];
  assert.deepEqual(Array.from(rotateBatch(x, n, h, w, c, 0)), Array.from(x));
  assert.deepEqual(Array.from(rotateBatch(x, n, h, w, c, 1)), flat(fx.x90_nhwc));
  assert.deepEqual(Array.from(rotateBatch(x, n, h, w, c, 2)), flat(fx.x180_nhwc));
  assert.deepEqual(Array.from(rotateBatch(x, n, h, w, c, 3)), flat(fx.x270_nhwc));
  // four quarter turns are the identity
  let y: Float32Array = x;
  for (let k = 0; k < 4; k++) y = rotateBatch(y, n, h, w, c, 1);
  assert.deepEqual(Array.from(y), Array.from(x));
});

test('augmentBatch is reproducible for a seed and differs for another', () => {
  const set = randomSet(16, 32, 1);
  const idx = [3, 1, 4, 1, 5, 9, 2, 6];
  const a = augmentBatch(set, idx, new Rng(7), TRAIN);
  const b = augmentBatch(set, idx, new Rng(7), TRAIN);
  const c = augmentBatch(set, idx, new Rng(8), TRAIN);
  assert.equal(a.length, idx.length * 32 * 32 * 3);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const lo = Math.min(lut(0, 0), lut(0, 1), lut(0, 2)) - 1e-6;
  const hi = Math.max(lut(255, 0), lut(255, 1), lut(255, 2)) + 1e-6;
  for (const v of a) assert.ok(Number.isFinite(v) && v >= lo && v <= hi, `value ${v} outside [${lo}, ${hi}]`);
});

test('without augmentation the batch is the normalised images; normalizePixels agrees', () => {
  const set = randomSet(4, 8, 2);
  const plain = augmentBatch(set, [2, 0], new Rng(0), { padding: 0, flip: false, jitter: 0, normalization: CIFAR_NORMALIZATION });
  const norm = normalizeBatch(set, [2, 0], CIFAR_NORMALIZATION);
  assert.deepEqual(plain, norm);
  for (let i = 0; i < 192; i++) assert.equal(norm[i], Math.fround(lut(set.images.all()[2 * 192 + i], i % 3)));
  assert.deepEqual(normalizePixels(set.images.all().slice(2 * 192, 3 * 192), 1, CIFAR_NORMALIZATION), norm.subarray(0, 192));
});

test('random crop shifts the image inside zero padding by the drawn offsets', () => {
  const set = randomSet(1, 8, 3);
  for (let seed = 0; seed < 20; seed++) {
    const out = augmentBatch(set, [0], new Rng(seed), { padding: 4, flip: false, jitter: 0, normalization: CIFAR_NORMALIZATION });
    const draws = new Rng(seed);
    const dy = draws.randint(9) - 4;
    const dx = draws.randint(9) - 4;
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) for (let c = 0; c < 3; c++) {
      const sy = y + dy;
      const sx = x + dx;
      const v = sy >= 0 && sy < 8 && sx >= 0 && sx < 8 ? set.images.all()[(sy * 8 + sx) * 3 + c] : 0;
      assert.equal(out[(y * 8 + x) * 3 + c], Math.fround(lut(v, c)));
    }
  }
});

test('horizontal flip mirrors about half of the images', () => {
  const set = randomSet(1, 6, 4);
  const idx = new Array(200).fill(0);
  const out = augmentBatch(set, idx, new Rng(5), { padding: 0, flip: true, jitter: 0, normalization: CIFAR_NORMALIZATION });
  const norm = normalizeBatch(set, [0], CIFAR_NORMALIZATION);
  const mirrored = new Float32Array(norm.length);
  for (let y = 0; y < 6; y++) for (let x = 0; x < 6; x++) for (let c = 0; c < 3; c++) mirrored[(y * 6 + x) * 3 + c] = norm[(y * 6 + 5 - x) * 3 + c];
  let flipped = 0;
  for (let n = 0; n < 200; n++) {
    const img = out.subarray(n * 108, (n + 1) * 108);
    if (img.every((v, i) => v === mirrored[i])) flipped++;
    else assert.deepEqual(img, norm);
  }
  assert.ok(flipped > 70 && flipped < 130, `${flipped} of 200 flipped`);
});

test('colour jitter: on a grey image only brightness acts, by a factor in [0.6, 1.4]', () => {
  const set: ImageSet = { ...randomSet(1, 4, 0), images: ImageStore.fromBytes(new Uint8Array(48).fill(128), 48) };
  const out = augmentBatch(set, new Array(100).fill(0), new Rng(6), { padding: 0, flip: false, jitter: 0.4, normalization: { mean: [0, 0, 0], std: [1, 1, 1] } });
  const seen = new Set<number>();
  for (let n = 0; n < 100; n++) {
    const v = Math.round(out[n * 48] * 255);
    for (let i = 0; i < 48; i++) assert.equal(Math.round(out[n * 48 + i] * 255), v, 'a grey image stays uniform');
    assert.ok(v >= Math.floor(128 * 0.6) && v <= Math.floor(128 * 1.4), `value ${v}`);
    seen.add(v);
  }
  assert.ok(seen.size > 30, 'factors vary');
});

test('augmented batches keep the data statistics roughly (no systematic shift)', () => {
  const set = randomSet(64, 32, 9);
  const out = augmentBatch(set, Array.from({ length: 64 }, (_, i) => i), new Rng(1), { ...TRAIN, padding: 0 });
  const mean = [0, 0, 0];
  for (let i = 0; i < out.length; i++) mean[i % 3] += out[i] / (out.length / 3);
  const expected = [0, 1, 2].map((c) => lut(127.5, c));
  for (let c = 0; c < 3; c++) assert.ok(Math.abs(mean[c] - expected[c]) < 0.15, `channel ${c}: ${mean[c]} vs ${expected[c]}`);
});

test('colour jitter equals PIL enhancements applied one after another (order and factors from the stream)', () => {
  const set = randomSet(3, 8, 12);
  const identity = { mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] };
  const blend = (d: number, v: number, f: number): number => { const t = d + f * (v - d); return t <= 0 ? 0 : t >= 255 ? 255 : Math.trunc(t); };
  const luma = (r: number, g: number, b: number): number => (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
  for (let seed = 0; seed < 30; seed++) {
    const out = augmentBatch(set, [seed % 3], new Rng(seed), { padding: 0, flip: false, jitter: 0.4, normalization: identity });
    const draws = new Rng(seed);
    const order = draws.permutation(3);
    const factors = [draws.uniform(0.6, 1.4), draws.uniform(0.6, 1.4), draws.uniform(0.6, 1.4)];
    const px = Array.from(set.images.all().subarray((seed % 3) * 192, (seed % 3 + 1) * 192));
    for (const op of order) {
      const f = factors[op];
      if (op === 0) for (let i = 0; i < px.length; i++) px[i] = blend(0, px[i], f);
      if (op === 1) {
        let sum = 0;
        for (let i = 0; i < px.length; i += 3) sum += luma(px[i], px[i + 1], px[i + 2]);
        const mean = Math.floor(sum / 64 + 0.5);
        for (let i = 0; i < px.length; i++) px[i] = blend(mean, px[i], f);
      }
      if (op === 2) {
        for (let i = 0; i < px.length; i += 3) {
          const g = luma(px[i], px[i + 1], px[i + 2]);
          for (let k = 0; k < 3; k++) px[i + k] = blend(g, px[i + k], f);
        }
      }
    }
    assert.deepEqual(Array.from(out, (v) => Math.round(v * 255)), px, `seed ${seed}`);
  }
});
