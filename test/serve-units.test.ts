/** Unit tests of the server's parts: batcher, store, metrics, augmentation and image decoding. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { augmentBatch, augmentSupportPixels, normalizePixels, paddingForSize } from '../data/augment.js';
import { tileSupport } from '../data/episodes.js';
import { Rng } from '../data/rng.js';
import type { ImageSet, Normalization } from '../data/types.js';
import { ExtractionBatcher, QueueFullError, BatcherClosedError } from '../infer/server/batcher.js';
import { HttpError } from '../infer/server/errors.js';
import { decodeImages } from '../infer/server/images.js';
import { ServerMetrics } from '../infer/server/metrics.js';
import { FolderStore, STORE_FORMAT, STORE_VERSION, type StoredClassifier } from '../infer/server/store.js';
import { FakeExtractor, encodeImage, syntheticImage } from './serve-helpers.js';
import { ImageStore } from '../data/pixels.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('the batcher merges jobs that arrive together into one run and splits each job back', async () => {
  const fake = new FakeExtractor(4);
  const b = new ExtractionBatcher((p, n) => fake.extractPixels(p, n), 4 * 4 * 3, fake.featureDim, { maxBatch: 64, maxWaitMs: 5, maxQueuedImages: 1000 });
  const imgs = [1, 2, 3].map((k) => syntheticImage(4, [k * 50, 10, 20], k));
  const [a, c, d] = await Promise.all(imgs.map((px) => b.submit(px, 1)));
  assert.deepEqual(fake.runs, [3]);
  for (const [i, got] of [a, c, d].entries()) assert.deepEqual(got, await new FakeExtractor(4).extractPixels(imgs[i]!, 1));
});

test('the batcher splits a job larger than maxBatch over several runs, in order', async () => {
  const fake = new FakeExtractor(4);
  const b = new ExtractionBatcher((p, n) => fake.extractPixels(p, n), 48, fake.featureDim, { maxBatch: 4, maxWaitMs: 1, maxQueuedImages: 1000 });
  const px = new Uint8Array(10 * 48);
  for (let i = 0; i < 10; i++) px.set(syntheticImage(4, [i * 20, 0, 0], i), i * 48);
  const got = await b.submit(px, 10);
  assert.deepEqual(fake.runs, [4, 4, 2]);
  assert.deepEqual(got, await new FakeExtractor(4).extractPixels(px, 10));
});

test('the batcher refuses jobs when its queue is full and recovers afterwards', async () => {
  const fake = new FakeExtractor(4, 30);
  const b = new ExtractionBatcher((p, n) => fake.extractPixels(p, n), 48, fake.featureDim, { maxBatch: 2, maxWaitMs: 0, maxQueuedImages: 3 });
  const one = () => b.submit(new Uint8Array(48), 1);
  const accepted = [one(), one()]; // both go to the first run (maxBatch 2)
  await tick(1);
  const queued = [one(), one(), one()];
  await assert.rejects(one(), QueueFullError);
  await Promise.all([...accepted, ...queued]);
  assert.equal(b.queuedImages, 0);
  await one();
});

test('an extractor failure rejects exactly the jobs of that run; close waits for work in flight', async () => {
  let calls = 0;
  const b = new ExtractionBatcher(async (_p, n) => {
    calls++;
    await tick(10);
    if (calls === 1) throw new Error('boom');
    return new Float32Array(n * 2);
  }, 3, 2, { maxBatch: 1, maxWaitMs: 0, maxQueuedImages: 10 });
  const first = b.submit(new Uint8Array(3), 1);
  const second = b.submit(new Uint8Array(3), 1);
  await assert.rejects(first, /boom/);
  const closing = b.close();
  await assert.rejects(b.submit(new Uint8Array(3), 1), BatcherClosedError);
  assert.equal((await second).length, 2);
  await closing;
});

function classifier(name: string, labels = ['a', 'b']): StoredClassifier {
  return {
    format: STORE_FORMAT, version: STORE_VERSION, name, labels, head: { kind: 'proto', version: 1, numClasses: 2, dim: 1, parameters: { prototypes: [0, 1] } },
    headKind: 'proto', featureDim: 1, modelSha256: 'a'.repeat(64), supportImages: 2, augment: 0, seed: 0, createdAt: new Date(0).toISOString(),
  };
}

test('the store writes atomically, survives reopening, drops temp leftovers and skips foreign files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-store-'));
  try {
    const store = await FolderStore.open(dir);
    await Promise.all([store.put(classifier('first')), store.put(classifier('second_2')), store.put(classifier('first', ['x', 'y']))]);
    assert.deepEqual(readdirSync(dir).sort(), ['first.json', 'second_2.json']);
    assert.equal(await store.delete('second_2'), true);
    assert.equal(await store.delete('second_2'), false);
    // What a crash mid-write leaves behind, and a file this store did not write.
    writeFileSync(join(dir, '.third.json.123.abcdef.tmp'), '{"format":"skd-classif');
    writeFileSync(join(dir, 'broken.json'), '{"not": "a classifier"}');
    const reopened = await FolderStore.open(dir);
    assert.deepEqual((await reopened.list()).map((c) => [c.name, c.labels]), [['first', ['x', 'y']]]);
    assert.deepEqual(reopened.skipped.map((s) => s.file), ['broken.json']);
    assert.ok(!readdirSync(dir).some((f) => f.endsWith('.tmp')));
    assert.equal(JSON.parse(readFileSync(join(dir, 'first.json'), 'utf8')).name, 'first');
    assert.throws(() => reopened.put(classifier('../escape')), RangeError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('stored classifiers are validated in full on load (a bad file is skipped) and on put', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-store-'));
  try {
    const good = classifier('good');
    const logreg = { kind: 'logreg', version: 1, numClasses: 3, dim: 1, parameters: { C: 1, coef: [1, 0, -1], intercept: [0, 0, 0] } };
    const bad: Record<string, Record<string, unknown>> = {
      null_head: { ...classifier('null_head'), head: null },
      labels_string: { ...classifier('labels_string'), labels: 'notalist' },
      fewer_labels: { ...classifier('fewer_labels'), head: logreg, headKind: 'logreg' },
      nan_weight: { ...classifier('nan_weight'), head: { ...good.head, parameters: { prototypes: [0, null] } } },
      wrong_dim: { ...classifier('wrong_dim'), featureDim: 2 },
      duplicate_labels: { ...classifier('duplicate_labels'), labels: ['a', 'a'] },
      no_sha: { ...classifier('no_sha'), modelSha256: 'abc' },
      other_name: { ...classifier('someone_else') },
    };
    writeFileSync(join(dir, 'good.json'), JSON.stringify(good));
    for (const [name, record] of Object.entries(bad)) writeFileSync(join(dir, `${name}.json`), JSON.stringify(record));
    const store = await FolderStore.open(dir);
    assert.deepEqual((await store.list()).map((c) => c.name), ['good']);
    const reasons = Object.fromEntries(store.skipped.map((s) => [s.file.replace('.json', ''), s.reason]));
    assert.deepEqual(Object.keys(reasons).sort(), Object.keys(bad).sort());
    assert.match(reasons.null_head!, /^head: must be a fitted head/);
    assert.match(reasons.labels_string!, /^labels: must be an array of class names, got "notalist"/);
    assert.match(reasons.fewer_labels!, /^head\.numClasses: the head has 3 classes but labels lists 2/);
    assert.match(reasons.nan_weight!, /^head\.parameters\.prototypes\[1\]: must be a finite number/);
    assert.match(reasons.wrong_dim!, /^head\.dim: the head takes 1 features but featureDim is 2/);
    assert.match(reasons.duplicate_labels!, /^labels\[1\]: "a" appears twice/);
    assert.match(reasons.no_sha!, /^modelSha256: /);
    assert.match(reasons.other_name!, /^name: is "someone_else", expected "other_name"/);
    assert.throws(() => store.put(bad.fewer_labels as unknown as StoredClassifier), /head\.numClasses/);
    assert.equal(await store.get('fewer_labels'), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('metrics render in the Prometheus text format', () => {
  const m = new ServerMetrics();
  m.requests.inc({ route: '/v1/embed', method: 'POST', status: '200' });
  m.requests.inc({ route: '/v1/embed', method: 'POST', status: '200' });
  m.latency.observe(0.003, { route: '/v1/embed' });
  m.batchSize.observe(5);
  m.addGauge('skd_queue_images', 'Queue.', () => 7);
  const text = m.render();
  assert.match(text, /^# TYPE skd_http_requests_total counter$/m);
  assert.match(text, /^skd_http_requests_total\{method="POST",route="\/v1\/embed",status="200"\} 2$/m);
  assert.match(text, /^skd_http_request_duration_seconds_bucket\{route="\/v1\/embed",le="0\.0025"\} 0$/m);
  assert.match(text, /^skd_http_request_duration_seconds_bucket\{route="\/v1\/embed",le="0\.005"\} 1$/m);
  assert.match(text, /^skd_http_request_duration_seconds_bucket\{route="\/v1\/embed",le="\+Inf"\} 1$/m);
  assert.match(text, /^skd_batch_size_images_sum 5$/m);
  assert.match(text, /^skd_queue_images 7$/m);
  for (const line of text.trim().split('\n')) assert.match(line, /^(# (HELP|TYPE) \w+ .+|\w+(\{.*\})? [-+0-9.eInfNa]+)$/, line);
});

test('eval and serve augment support images into the same pixels for the same seed at 32, 48, 84 and 128 px', () => {
  const normalization = { mean: [0.5071, 0.4867, 0.4408], std: [0.2675, 0.2565, 0.2761] } as const satisfies Normalization;
  for (const size of [32, 48, 84, 128]) {
    const count = 3;
    const copies = 4;
    const pixels = new Uint8Array(count * size * size * 3);
    for (let i = 0; i < count; i++) pixels.set(syntheticImage(size, [40 * i, 90, 200], i), i * size * size * 3);
    const set: ImageSet = { name: 'folder', split: 't', images: ImageStore.fromBytes(pixels, size * size * 3), count, height: size, width: size, channels: 3, labels: new Int32Array(count), classNames: ['a'], originalIds: [0] };
    // skd eval: the episode's support tiled as np.tile does, cropped with the dataset rule's padding (infer/evaluate.ts).
    const episode = { index: 0, supportIdx: Int32Array.from([0, 1, 2]), supportLabels: Int32Array.from([0, 1, 2]), queryIdx: new Int32Array(0), queryLabels: new Int32Array(0) };
    const tiled = tileSupport(episode as unknown as Parameters<typeof tileSupport>[0], copies);
    const evaluated = augmentBatch(set, tiled.indices, new Rng(7), { padding: paddingForSize(size), flip: true, jitter: 0, normalization });
    // skd serve: the decoded support pixels, augmented, then normalised by the extractor.
    const served = normalizePixels(augmentSupportPixels(pixels, count, size, copies, new Rng(7)), count * copies, normalization);
    assert.deepEqual(served, evaluated, `${size} px`);
    assert.notDeepEqual(served.subarray(0, size * size * 3), normalizePixels(pixels.subarray(0, size * size * 3), 1, normalization), `${size} px: augmented`);
  }
  assert.deepEqual([32, 48, 84, 128].map(paddingForSize), [4, 8, 8, 13]);
});

test('images decode from PNG, JPEG, WebP and raw arrays (resized to cover), and bad ones name the field', async () => {
  const limits = { maxImages: 10, maxPixels: 100 * 100 };
  const px = syntheticImage(32, [10, 120, 240], 1);
  const png = await encodeImage(px, 32, 32, 'png');
  const webp = await encodeImage(px, 32, 32, 'webp');
  const jpeg = await encodeImage(px, 32, 32, 'jpeg');
  const wide = syntheticImage(64, [250, 0, 0], 2).subarray(0, 40 * 64 * 3); // 40 rows x 64 columns
  const out = await decodeImages([png, `data:image/webp;base64,${webp}`, jpeg, { shape: [2, 32, 32, 3], pixels: [...px, ...px] }, { shape: [40, 64, 3], pixels: Array.from(wide) }], (i) => `f[${i}]`, 32, limits);
  assert.equal(out.count, 6);
  assert.deepEqual(out.perInput, [1, 1, 1, 2, 1]);
  const img = (k: number) => out.pixels.subarray(k * 3072, (k + 1) * 3072);
  assert.deepEqual(img(0), px);
  assert.deepEqual(img(1), px);
  assert.deepEqual(img(3), px);
  const jpegError = img(2).reduce((s, v, i) => s + Math.abs(v - px[i]!), 0) / 3072;
  assert.ok(jpegError < 8, `JPEG mean error ${jpegError}`);
  assert.ok(img(5)[0]! > 200 && img(5)[1]! < 60);

  const bad: [unknown, string, number][] = [
    ['not base64 at all!', 'f[0]', 400],
    [Buffer.from('GIF89a garbage that is not an image').toString('base64'), 'f[0]', 400],
    [png.slice(0, png.length / 2), 'f[0]', 400],
    [{ shape: [32, 32, 4], pixels: [] }, 'f[0].shape', 400],
    [{ shape: [2, 2, 3], pixels: [1, 2, 3] }, 'f[0].pixels', 400],
    [{ shape: [1, 1, 3], pixels: [1, 256, 3] }, 'f[0].pixels[1]', 400],
    [{ shape: [1, 1, 3], pixels: [1, 2.5, 3] }, 'f[0].pixels[1]', 400],
    [{ shape: [101, 100, 3], pixels: [] }, 'f[0].shape', 413],
    [await encodeImage(syntheticImage(128, [0, 0, 0], 3), 128, 128), 'f[0]', 413],
  ];
  for (const [input, field, status] of bad) {
    await assert.rejects(decodeImages([input as string], (i) => `f[${i}]`, 32, limits), (err: unknown) => {
      assert.ok(err instanceof HttpError, String(err));
      assert.equal(err.field, field, err.message);
      assert.equal(err.statusCode, status, err.message);
      return true;
    });
  }
});
