/**
 * Request images the limits admit always decode or get a 4xx (extreme aspect ratios included), and decoding one
 * request's images stops at the server's time budget.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../infer/server/errors.js';
import { decodeImages, type ImageInput } from '../infer/server/images.js';
import { createServer } from '../infer/server/server.js';
import { FIXTURES } from './helpers/run-skd.js';
import { FakeExtractor } from './serve-helpers.js';

const MODEL = join(FIXTURES, 'models', 'resnet12_w8-16-32-64_pytorch.onnx');
const S = 32;
const RED = [220, 20, 20];
const BLUE = [20, 20, 220];
let dir: string;
let app: FastifyInstance;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skd-serve-images-'));
  app = (await createServer({ extractor: new FakeExtractor(S), modelPath: MODEL, storeDir: join(dir, 'store') })).app;
});

after(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** height x width pixels, blue except a red block of about `centre` x `centre` pixels in the middle. */
function centreMarked(height: number, width: number, centre = 8): Uint8Array {
  const px = new Uint8Array(height * width * 3);
  const top = Math.floor(height / 2) - Math.floor(centre / 2);
  const left = Math.floor(width / 2) - Math.floor(centre / 2);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inside = y >= top && y < top + centre && x >= left && x < left + centre;
      px.set(inside ? RED : BLUE, (y * width + x) * 3);
    }
  }
  return px;
}

/** A plain array of the values (Array.from is slow on millions of them). */
function values(px: Uint8Array): number[] {
  const out = new Array<number>(px.length);
  for (let i = 0; i < px.length; i++) out[i] = px[i]!;
  return out;
}

/** The mean colour of image k of a decoded batch. */
function meanColour(pixels: Uint8Array, k: number): number[] {
  const sums = [0, 0, 0];
  const n = S * S;
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) sums[c]! += pixels[(k * n + i) * 3 + c]!;
  return sums.map((v) => v / n);
}

const LIMITS = { maxImages: 16, maxPixels: 4096 * 4096 };

test('raw images of extreme aspect ratios decode to their centre', async () => {
  // Each is under the pixel limit; the first is the one that used to fail inside sharp's resize.
  const shapes: [number, number][] = [[1, 2_100_000], [2_100_000, 1], [2, 1_000_000], [1, 65], [65, 1], [1, 64], [4096, 3]];
  for (const [h, w] of shapes) {
    const input = { shape: [h, w, 3], pixels: values(centreMarked(h, w)) };
    const out = await decodeImages([input], (i) => `body.images[${i}]`, S, LIMITS);
    assert.equal(out.count, 1);
    const [r, , b] = meanColour(out.pixels, 0);
    assert.ok(r! > 150 && b! < 100, `[${h}, ${w}, 3]: mean colour ${meanColour(out.pixels, 0).map((v) => v.toFixed(0))}, expected the red centre`);
  }
  // A batch of such images.
  const one = values(centreMarked(1, 300_000));
  const out = await decodeImages([{ shape: [2, 1, 300_000, 3], pixels: [...one, ...one] }], (i) => `f[${i}]`, S, LIMITS);
  assert.equal(out.count, 2);
  for (const k of [0, 1]) assert.ok(meanColour(out.pixels, k)[0]! > 150);
});

test('encoded images of extreme aspect ratios decode, not "does not decode" (EXIF orientation included)', async () => {
  const encode = (px: Uint8Array, h: number, w: number) => sharp(Buffer.from(px), { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
  const inputs: ImageInput[] = [
    (await encode(centreMarked(1, 2_100_000), 1, 2_100_000)).toString('base64'),
    (await encode(centreMarked(2_100_000, 1), 2_100_000, 1)).toString('base64'),
    // 10 rows x 1000 columns stored, shown rotated (orientation 6): 1000 rows x 10 columns.
    (await sharp(Buffer.from(centreMarked(10, 1000, 10)), { raw: { width: 1000, height: 10, channels: 3 } }).png().withMetadata({ orientation: 6 }).toBuffer()).toString('base64'),
  ];
  const out = await decodeImages(inputs, (i) => `f[${i}]`, S, LIMITS);
  assert.equal(out.count, 3);
  for (let k = 0; k < 3; k++) {
    const [r, , b] = meanColour(out.pixels, k);
    assert.ok(r! > 150 && b! < 100, `image ${k}: mean colour ${meanColour(out.pixels, k).map((v) => v.toFixed(0))}`);
  }
});

test('POST /v1/embed with a raw [1, 2100000, 3] image answers 200, not 500', async () => {
  const pixels = values(centreMarked(1, 2_100_000));
  const res = await app.inject({ method: 'POST', url: '/v1/embed', payload: { images: [{ shape: [1, 2_100_000, 3], pixels }] } });
  assert.equal(res.statusCode, 200, res.body.slice(0, 300));
  assert.equal(res.json().count, 1);
});

test('decoding stops at the time budget with a 413 naming the image, and starts no further images', async () => {
  // Noise does not compress: each 1024 x 1024 PNG takes some milliseconds to decode.
  const noise = new Uint8Array(1024 * 1024 * 3);
  let state = 12345;
  for (let i = 0; i < noise.length; i++) { state = (Math.imul(state, 1664525) + 1013904223) >>> 0; noise[i] = state >>> 24; }
  const png = (await sharp(Buffer.from(noise), { raw: { width: 1024, height: 1024, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer()).toString('base64');
  const corrupt = png.slice(0, png.length / 2);
  const inputs: ImageInput[] = [...Array.from({ length: 8 }, () => png), corrupt];
  const fieldOf = (i: number) => `body.images[${i}]`;

  // Without a budget every image is decoded, up to the corrupt last one.
  await assert.rejects(decodeImages(inputs, fieldOf, S, LIMITS), (err: unknown) => err instanceof HttpError && err.statusCode === 400 && err.field === 'body.images[8]');
  // With a 1 ms budget the first images overrun it and the corrupt one is never started.
  await assert.rejects(decodeImages(inputs, fieldOf, S, { ...LIMITS, decodeBudgetMs: 1 }), (err: unknown) => {
    assert.ok(err instanceof HttpError, String(err));
    assert.equal(err.statusCode, 413, err.message);
    assert.match(err.field, /^body\.images\[[0-7]\]$/);
    assert.match(err.message, /budget of 1 ms \(--decode-budget-ms\)/);
    return true;
  });

  const server = await createServer({ extractor: new FakeExtractor(S), modelPath: MODEL, storeDir: join(dir, 'budget'), limits: { decodeBudgetMs: 1, bodyLimitBytes: 64 * 1024 * 1024 } });
  try {
    const res = await server.app.inject({ method: 'POST', url: '/v1/embed', payload: { images: inputs.slice(0, 8) } });
    assert.equal(res.statusCode, 413, res.body.slice(0, 300));
    assert.match(res.json().message, /--decode-budget-ms/);
    const model = await server.app.inject({ method: 'GET', url: '/v1/model' });
    assert.equal(model.json().limits.decodeBudgetMs, 1);
  } finally {
    await server.app.close();
  }
});
