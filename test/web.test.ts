/**
 * End-to-end test of the browser demo in headless Chromium (Debian's chromium, driven by playwright-core):
 * loads an exported model, builds two classes, classifies a picture, survives a reload, saves and loads the
 * classifier file, shows each error state, and makes no request outside this machine. Screenshots of
 * every state go to test/out/web/.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import sharp from 'sharp';
import { createHash } from 'node:crypto';
import { startWebServer, type WebServer } from '../bin/commands/web.js';
import { startServer } from '../infer/server/server.js';
import { FeatureExtractor } from '../infer/session.js';
import { augmentSupportPixels } from '../data/augment.js';
import { Rng } from '../data/rng.js';
import { exportOnnx } from '../export/onnx.js';
import { initWeights } from '../models/init.js';
import { resnet12Spec } from '../models/spec.js';
import { rename } from './helpers/onnx-bytes.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const CIFAR = { mean: [0.5071, 0.4867, 0.4408], std: [0.2675, 0.2565, 0.2761] } as { mean: [number, number, number]; std: [number, number, number] };
const SIZE = 32;
const PHONE = { width: 390, height: 844 };
const WAIT_MS = 60_000;

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}
const SHOTS = join(packageRoot(), 'test', 'out', 'web');

/** A seeded 32-bit generator (mulberry32), so the pictures are the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Two visually distinct kinds of picture: red with horizontal stripes, blue with vertical stripes. */
function pictureRgb(kind: 'red' | 'blue', seed: number): Uint8Array {
  const random = rng(seed);
  const base = kind === 'red' ? [200, 40, 40] : [40, 60, 200];
  const jitter = base.map(() => (random() - 0.5) * 40);
  const period = 4 + Math.floor(random() * 4);
  const pixels = new Uint8Array(SIZE * SIZE * 3);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const stripe = Math.floor((kind === 'red' ? y : x) / period) % 2 === 0 ? 1 : 0.45;
      for (let c = 0; c < 3; c++) {
        const v = (base[c] + jitter[c]) * stripe + (random() - 0.5) * 30;
        pixels[(y * SIZE + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return pixels;
}

async function png(rgb: Uint8Array): Promise<Buffer> {
  return sharp(Buffer.from(rgb), { raw: { width: SIZE, height: SIZE, channels: 3 } }).png().toBuffer();
}

/** The model's features for one PNG computed in Node with onnxruntime-node (the reference for the page's). */
async function nodeFeatures(modelBytes: Uint8Array, picture: Buffer): Promise<Float32Array> {
  const { data, info } = await sharp(picture).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.width, SIZE);
  const input = new Float32Array(3 * SIZE * SIZE);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < SIZE * SIZE; i++) input[c * SIZE * SIZE + i] = (data[i * 3 + c] / 255 - CIFAR.mean[c]) / CIFAR.std[c];
  }
  const session = await ort.InferenceSession.create(modelBytes, { intraOpNumThreads: 1 });
  const out = await session.run({ images: new ort.Tensor('float32', input, [1, 3, SIZE, SIZE]) });
  const features = Float32Array.from(out.features.data as Float32Array);
  await session.release();
  return features;
}

const isLocal = (url: string) => /^(https?|wss?):\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\//.test(url) || /^(data|blob|about|chrome-error):/.test(url);

let work: string;
let modelBytes: Uint8Array;
let server: WebServer;
let context: BrowserContext;
const externalRequests: string[] = [];
const pageErrors: string[] = [];

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; .ci/run does it)`);
  if (!existsSync(join(packageRoot(), 'web', 'dist', 'index.html'))) throw new Error('web/dist is not built: run node web/build.mjs (npm test does it first)');
  mkdirSync(SHOTS, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'skd-web-test-'));
  const spec = resnet12Spec({ widths: [8, 16, 32, 64], numClasses: 10, imageSize: SIZE });
  modelBytes = exportOnnx({ spec, weights: initWeights(spec, 7), outputs: ['features', 'logits'], normalization: CIFAR, metadata: { dataset: 'test' } });
  writeFileSync(join(work, 'model.onnx'), modelBytes);
  server = await startWebServer({ modelPath: join(work, 'model.onnx'), port: 0 });
  context = await chromium.launchPersistentContext(join(work, 'profile'), {
    executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, viewport: PHONE, acceptDownloads: true,
  });
  // Every request outside this machine is recorded and refused.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (isLocal(url)) return route.continue();
    externalRequests.push(url);
    return route.abort();
  });
  context.on('request', (request) => { if (!isLocal(request.url())) externalRequests.push(request.url()); });
  context.on('weberror', (e) => pageErrors.push(e.error().message));
});

after(async () => {
  await context?.close();
  await server?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function waitForState(page: Page, state: string): Promise<void> {
  await page.waitForFunction((s) => document.body.dataset.state === s, state, { timeout: WAIT_MS });
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function addPictures(page: Page, className: string, pictures: { name: string; buffer: Buffer }[]): Promise<void> {
  const before = await page.locator(`li[data-class-name="${className}"] .thumbs img`).count();
  await page.locator(`li[data-class-name="${className}"] input[type=file]`).setInputFiles(pictures.map((p) => ({ ...p, mimeType: 'image/png' })));
  await page.waitForFunction(
    ([name, count]) => document.querySelectorAll(`li[data-class-name="${name}"] .thumbs img`).length === count,
    [className, before + pictures.length] as const, { timeout: WAIT_MS },
  );
}

test('the page teaches two classes, classifies a picture like onnxruntime-node, and keeps the classes', { timeout: 150_000 }, async (t) => {
  const red = await Promise.all([1, 2, 3].map(async (s) => ({ name: `red-${s}.png`, buffer: await png(pictureRgb('red', s)) })));
  const blue = await Promise.all([11, 12, 13].map(async (s) => ({ name: `blue-${s}.png`, buffer: await png(pictureRgb('blue', s)) })));
  const query = await png(pictureRgb('red', 99));
  const expectedFeatures = await nodeFeatures(modelBytes, query);

  const page = context.pages()[0] ?? await context.newPage();
  page.on('dialog', (dialog) => void dialog.accept());
  await page.goto(server.url, { waitUntil: 'domcontentloaded' });
  assert.equal(await page.evaluate(() => document.body.dataset.state), 'loading');
  await shot(page, '01-loading');

  await waitForState(page, 'no-classes');
  assert.match(await page.locator('#model-status').innerText(), /resnet12, 64 features; 32×32 RGB, NCHW/);
  assert.equal(await page.locator('#model-notice').isVisible(), false, 'a model with metadata needs no assumptions');
  // The server's headers make the page cross-origin isolated, so the WebAssembly runtime gets threads.
  assert.equal(await page.evaluate(() => crossOriginIsolated), true);
  assert.match(await page.locator('#runtime-info').innerText(), /Running on WebAssembly with \d+ threads?\./);
  await shot(page, '02-no-classes');

  for (const name of ['red stripes', 'blue stripes']) {
    await page.getByLabel('Name of a new class').fill(name);
    await page.getByRole('button', { name: 'Add class' }).click();
  }
  await addPictures(page, 'red stripes', red);
  await waitForState(page, 'too-few');
  // The remove marks are small and sit in each thumbnail's top-right corner.
  const thumb = (await page.locator('li[data-class-name="red stripes"] .thumbs img').first().boundingBox())!;
  const mark = (await page.locator('li[data-class-name="red stripes"] .thumbs button').first().boundingBox())!;
  assert.ok((mark.width * mark.height) / (thumb.width * thumb.height) < 0.15, `the remove mark covers ${(100 * mark.width * mark.height / (thumb.width * thumb.height)).toFixed(0)}% of the thumbnail`);
  assert.ok(mark.x >= thumb.x + thumb.width / 2 && mark.x + mark.width <= thumb.x + thumb.width + 1, 'the mark sits at the right edge');
  assert.ok(mark.y >= thumb.y - 1 && mark.y + mark.height <= thumb.y + thumb.height / 2, 'the mark sits at the top');
  // A picture that does not decode says so; the next action clears the message.
  await page.locator('li[data-class-name="blue stripes"] input[type=file]').setInputFiles({ name: 'bad.png', mimeType: 'image/png', buffer: Buffer.from('not a picture') });
  await page.locator('#class-error').waitFor({ state: 'visible', timeout: WAIT_MS });
  assert.match(await page.locator('#class-error').innerText(), /“bad\.png” could not be read/);
  assert.match(await page.locator('#classes-hint').innerText(), /Too few pictures.*“blue stripes”/);
  await shot(page, '03-too-few-pictures');

  await addPictures(page, 'blue stripes', blue);
  await waitForState(page, 'ready');
  assert.equal(await page.locator('#class-error').isVisible(), false, 'adding pictures clears the earlier message');

  await page.locator('#query-file').setInputFiles({ name: 'broken.png', mimeType: 'image/png', buffer: Buffer.from('this is not a picture') });
  await page.locator('#query-error').waitFor({ state: 'visible', timeout: WAIT_MS });
  assert.match(await page.locator('#query-error').innerText(), /“broken\.png” could not be read as a picture/);
  await shot(page, '04-undecodable-image');

  // The query arrives by drag and drop (support pictures came through the file chooser).
  await page.evaluate(({ base64, name }) => {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], name, { type: 'image/png' }));
    document.getElementById('query-drop')?.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }, { base64: query.toString('base64'), name: 'query.png' });
  await page.waitForFunction(() => document.body.dataset.result === 'shown', null, { timeout: WAIT_MS });
  assert.equal(await page.locator('#query-error').isVisible(), false);
  const result = await page.evaluate(() => (globalThis as unknown as { skdPage: { lastQuery: { features: number[]; probabilities: number[]; classes: string[] } } }).skdPage.lastQuery);
  assert.deepEqual(result.classes, ['red stripes', 'blue stripes']);
  assert.ok(result.probabilities[0] > 0.5, `the red query should be classified red, got ${result.probabilities.join(', ')}`);
  assert.ok(Math.abs(result.probabilities[0] + result.probabilities[1] - 1) < 1e-5);
  assert.match(await page.locator('#result-label').innerText(), /Most likely: red stripes/);
  assert.equal(result.features.length, expectedFeatures.length);
  const scale = Math.max(...Array.from(expectedFeatures, Math.abs));
  const maxDiff = Math.max(...result.features.map((v, i) => Math.abs(v - expectedFeatures[i])));
  assert.ok(maxDiff <= 1e-4, `page features differ from onnxruntime-node's by ${maxDiff} (largest feature ${scale})`);
  t.diagnostic(`page vs onnxruntime-node features: max abs difference ${maxDiff.toExponential(2)} (largest feature ${scale.toFixed(3)}); P(red) = ${result.probabilities[0].toFixed(3)}`);
  await shot(page, '05-classified');

  // A picture that fails after a result: its message shows, and the previous picture's result does not stay under it.
  await page.locator('#query-file').setInputFiles({ name: 'broken-2.png', mimeType: 'image/png', buffer: Buffer.from('still not a picture') });
  await page.locator('#query-error').waitFor({ state: 'visible', timeout: WAIT_MS });
  assert.equal(await page.locator('#result').isVisible(), false);
  await page.getByLabel('Name of a new class').fill('red stripes');
  await page.getByRole('button', { name: 'Add class' }).click();
  await page.locator('#class-error').waitFor({ state: 'visible', timeout: WAIT_MS });
  assert.equal(await page.locator('#query-error').isVisible(), false, 'a later action clears the query message');
  await page.locator('#query-file').setInputFiles({ name: 'query.png', mimeType: 'image/png', buffer: query });
  await page.waitForFunction(() => document.body.dataset.result === 'shown', null, { timeout: WAIT_MS });
  assert.equal(await page.locator('#class-error').isVisible(), false, 'classifying clears the class message');

  // This machine has no camera: the dialog says so and closes again.
  await page.locator('#query-camera').click();
  await page.locator('#camera-error').waitFor({ state: 'visible', timeout: WAIT_MS });
  assert.match(await page.locator('#camera-error').innerText(), /The camera could not be opened/);
  await shot(page, '05-camera-unavailable');
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.locator('#camera-dialog').waitFor({ state: 'hidden' });

  await page.setViewportSize({ width: 1100, height: 900 });
  await shot(page, '05-classified-desktop');
  await page.setViewportSize(PHONE);

  // Reload: the classes come back from IndexedDB.
  await page.reload({ waitUntil: 'domcontentloaded' });
  await waitForState(page, 'ready');
  assert.deepEqual(await page.locator('li.class-card h3').allInnerTexts(), ['red stripes', 'blue stripes']);
  assert.equal(await page.locator('li.class-card .thumbs img').count(), 6);
  await shot(page, '06-restored-after-reload');

  // Save to a file, remove everything, load the file back.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Save classifier to a file' }).click()]);
  const savedPath = join(work, 'classifier.json');
  await download.saveAs(savedPath);
  const saved = JSON.parse(readFileSync(savedPath, 'utf8')) as Record<string, unknown> & { format: string; labels: string[]; modelSha256: string; support: { label: string; features: number[] }[] };
  assert.equal(saved.format, 'skd-classifier');
  assert.deepEqual(saved.labels, ['red stripes', 'blue stripes']);
  assert.equal(saved.modelSha256, createHash('sha256').update(modelBytes).digest('hex'));
  assert.deepEqual(saved.support.map((p) => [p.label, p.features.length]), [...Array(3).fill(['red stripes', 64]), ...Array(3).fill(['blue stripes', 64])]);

  // skd serve with the same model imports the page's file and predicts what the page predicted.
  const extractor = await FeatureExtractor.open(join(work, 'model.onnx'), { device: 'cpu', threads: 1 });
  const api = await startServer({ extractor, modelPath: join(work, 'model.onnx'), storeDir: join(work, 'store'), host: '127.0.0.1', port: 0 });
  try {
    const put = await fetch(`${api.url}/v1/classifiers/stripes/record`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: readFileSync(savedPath) });
    assert.equal(put.status, 201, await put.clone().text());
    const predicted = await (await fetch(`${api.url}/v1/classifiers/stripes/predict`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ queries: [`data:image/png;base64,${query.toString('base64')}`] }),
    })).json() as { predictions: { label: string; probabilities: number[] }[] };
    assert.equal(predicted.predictions[0]!.label, 'red stripes');
    predicted.predictions[0]!.probabilities.forEach((p, k) => assert.ok(Math.abs(p - result.probabilities[k]!) < 1e-3, `class ${k}: server ${p}, page ${result.probabilities[k]}`));
    // And the server's record (a fitted head, no pictures) loads in the page.
    const record = await (await fetch(`${api.url}/v1/classifiers/stripes/record`)).json() as Record<string, unknown>;
    delete record.support;
    writeFileSync(join(work, 'server-record.json'), JSON.stringify(record));
  } finally {
    await api.close();
  }
  await page.getByRole('button', { name: 'Remove all classes' }).click();
  await waitForState(page, 'no-classes');
  await page.locator('#load-classifier').setInputFiles(join(work, 'server-record.json'));
  await waitForState(page, 'ready');
  assert.match(await page.locator('#classes-hint').innerText(), /fitted by skd serve/);
  await page.locator('#query-file').setInputFiles({ name: 'query.png', mimeType: 'image/png', buffer: query });
  await page.waitForFunction(() => document.body.dataset.result === 'shown', null, { timeout: WAIT_MS });
  const fromServer = await page.evaluate(() => (globalThis as unknown as { skdPage: { lastQuery: { probabilities: number[] } } }).skdPage.lastQuery.probabilities);
  fromServer.forEach((p, k) => assert.ok(Math.abs(p - result.probabilities[k]!) < 1e-5, `class ${k}: ${p} vs ${result.probabilities[k]}`));

  await page.getByRole('button', { name: 'Remove all classes' }).click();
  await waitForState(page, 'no-classes');
  await page.locator('#load-classifier').setInputFiles(savedPath);
  await waitForState(page, 'ready');
  assert.deepEqual(await page.locator('li.class-card h3').allInnerTexts(), ['red stripes', 'blue stripes']);

  // A model whose graph has no `features` output, picked with the file chooser.
  await page.locator('#model-file').setInputFiles({ name: 'logits-only.onnx', mimeType: 'application/octet-stream', buffer: rename(modelBytes, 'features', 'embedded') });
  await waitForState(page, 'model-error');
  assert.match(await page.locator('#model-error').innerText(), /logits-only\.onnx has no output 'features'; its outputs are: embedded, logits \(choose one with --output\)/);
  await shot(page, '07-model-without-features');

  assert.deepEqual(externalRequests, [], 'the page must not reach outside this machine');
  assert.deepEqual(pageErrors, []);
});

test('without a model the page says so and offers the file chooser', { timeout: 60_000 }, async () => {
  const bare = await startWebServer({ modelPath: null, port: 0 });
  try {
    const page = await context.newPage();
    await page.goto(bare.url);
    await waitForState(page, 'no-model');
    assert.match(await page.locator('#model-status').innerText(), /No model is served/);
    assert.equal(await page.locator('label[for=model-file]').isVisible(), true);
    await shot(page, '00-no-model');
    await page.close();
  } finally {
    await bare.close();
  }
});

test('a model without metadata is described by URL parameters or the form, and assumptions are shown', { timeout: 90_000 }, async () => {
  const foreign = join(packageRoot(), 'test', 'fixtures', 'models', 'resnet12_w8-16-32-64_pytorch.onnx');
  const other = await startWebServer({ modelPath: foreign, port: 0 });
  try {
    const page = await context.newPage();
    // Without a description the page refuses the graph with the message skd eval and skd serve give.
    await page.goto(other.url);
    await waitForState(page, 'model-error');
    assert.match(await page.locator('#model-error').innerText(), /model\.onnx: no normalisation in the metadata \(skd\.mean, skd\.std\); pass --mean and --std/);
    // The URL gives the normalisation; layout and size are read from the input shape, and the page says so.
    const params = new URLSearchParams({ mean: CIFAR.mean.join(','), std: CIFAR.std.join(',') });
    await page.goto(`${other.url}?${params}`);
    await waitForState(page, 'no-classes');
    assert.match(await page.locator('#model-notice').innerText(), /assumes: layout nchw \(from the input shape\), image size 32 \(from the input shape\)\. /);
    assert.match(await page.locator('#model-status').innerText(), /64 features; 32×32 RGB, NCHW, mean \[0\.5071, 0\.4867, 0\.4408\], std \[0\.2675/);
    await shot(page, '08-model-without-metadata');
    // The form completes the description; the model is prepared again and nothing is assumed any more.
    await page.locator('#model-settings summary').click();
    await page.getByLabel('Layout').selectOption('nchw');
    await page.getByLabel('Image size (pixels)').fill('32');
    await page.getByRole('button', { name: 'Reload the model with these settings' }).click();
    await page.waitForFunction(() => document.body.dataset.state === 'no-classes' && document.getElementById('model-notice')?.hidden === true, null, { timeout: WAIT_MS });
    assert.match(await page.locator('#model-status').innerText(), /Model ready/);
    await page.close();
  } finally {
    await other.close();
  }
  assert.deepEqual(externalRequests, []);
});

test('with ?augment=2 each support picture gives the two augmented copies skd serve would make', { timeout: 90_000 }, async () => {
  const page = await context.newPage();
  page.on('dialog', (dialog) => void dialog.accept());
  await page.goto(`${server.url}?augment=2`);
  await page.waitForFunction(() => ['no-classes', 'too-few', 'ready'].includes(document.body.dataset.state ?? ''), null, { timeout: WAIT_MS });
  if (await page.locator('li.class-card').count() > 0) {
    await page.getByRole('button', { name: 'Remove all classes' }).click();
    await waitForState(page, 'no-classes');
  }
  const pictures = { red: await png(pictureRgb('red', 5)), blue: await png(pictureRgb('blue', 15)) };
  for (const [name, buffer] of Object.entries(pictures)) {
    await page.getByLabel('Name of a new class').fill(name);
    await page.getByRole('button', { name: 'Add class' }).click();
    await addPictures(page, name, [{ name: `${name}.png`, buffer }]);
  }
  await waitForState(page, 'ready');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Save classifier to a file' }).click()]);
  const savedPath = join(work, 'augmented.json');
  await download.saveAs(savedPath);
  const saved = JSON.parse(readFileSync(savedPath, 'utf8')) as { augment: number; supportImages: number; support: { label: string; features: number[] }[] };
  assert.deepEqual([saved.augment, saved.supportImages, saved.support.map((p) => [p.label, p.features.length])], [2, 4, [['red', 128], ['blue', 128]]]);
  const extractor = await FeatureExtractor.open(join(work, 'model.onnx'), { device: 'cpu', threads: 1 });
  try {
    const expected = await extractor.extractPixels(augmentSupportPixels(pictureRgb('red', 5), 1, SIZE, 2, new Rng(0)), 2);
    const maxDiff = Math.max(...saved.support[0]!.features.map((v, i) => Math.abs(v - expected[i]!)));
    assert.ok(maxDiff <= 1e-4, `augmented support features differ from Node's by ${maxDiff}`);
  } finally {
    await extractor.close();
  }
  await page.close();
  assert.deepEqual(externalRequests, []);
});
