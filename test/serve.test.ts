/**
 * `skd serve` end to end on a loopback port with the real ONNX Runtime extractor (the small ResNet-12
 * fixture): every route, bad input, restart with the same store, and a concurrent burst whose answers
 * must equal unbatched ones.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { l2NormalizeRows } from '../infer/features.js';
import { startServer, type RunningServer } from '../infer/server/server.js';
import { FeatureExtractor } from '../infer/session.js';
import { FIXTURES } from './helpers/run-skd.js';
import { COLOURS, FakeExtractor, encodeImage, rawImage, request, syntheticImage } from './serve-helpers.js';

const MODEL = join(FIXTURES, 'models', 'resnet12_w8-16-32-64_pytorch.onnx');
const OVERRIDES = { layout: 'nchw' as const, size: 32, mean: [0.5071, 0.4867, 0.4408] as [number, number, number], std: [0.2675, 0.2565, 0.2761] as [number, number, number] };
const S = 32;

let dir: string;
let server: RunningServer;
let base: string;
/** A second extractor on the same model, for unbatched reference answers. */
let reference: FeatureExtractor;
const shots: { label: string; png: string }[] = [];
const queries: { label: string; image: { shape: number[]; pixels: number[] } }[] = [];

async function start(storeDir: string, webDir?: string): Promise<RunningServer> {
  const extractor = await FeatureExtractor.open(MODEL, { device: 'cpu', threads: 1, overrides: OVERRIDES });
  return startServer({ extractor, modelPath: MODEL, storeDir, host: '127.0.0.1', port: 0, webDir, limits: { maxImages: 64, maxPixels: 256 * 256, maxAugment: 5, bodyLimitBytes: 2 * 1024 * 1024 } });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skd-serve-'));
  const web = join(dir, 'web');
  mkdirSync(web);
  writeFileSync(join(web, 'index.html'), '<!doctype html><title>demo</title>');
  server = await start(join(dir, 'store'), web);
  base = server.url;
  reference = await FeatureExtractor.open(MODEL, { device: 'cpu', threads: 1, overrides: OVERRIDES });
  for (const [k, label] of ['red', 'green', 'blue'].entries()) {
    for (let j = 0; j < 2; j++) shots.push({ label, png: await encodeImage(syntheticImage(S, COLOURS[k]!, 10 * k + j), S, S) });
    for (let j = 0; j < 2; j++) queries.push({ label, image: rawImage(syntheticImage(S, COLOURS[k]!, 100 + 10 * k + j), S, S) });
  }
});

after(async () => {
  await server?.close();
  await reference?.close();
  rmSync(dir, { recursive: true, force: true });
});

const support = () => shots.map((s) => ({ label: s.label, image: s.png }));

async function unbatchedEmbedding(pixels: Uint8Array): Promise<number[]> {
  const f = await reference.extractPixels(pixels, 1);
  l2NormalizeRows(f, 1, reference.featureDim);
  return Array.from(f);
}

test('operational routes: healthz, model, model.onnx, metrics, static demo with isolation headers', async () => {
  const health = await request(base, 'GET', '/healthz');
  assert.equal(health.status, 200);
  assert.equal(health.body.status, 'ok');
  const model = await request(base, 'GET', '/v1/model');
  assert.equal(model.body.featureDim, 64);
  assert.equal(model.body.imageSize, 32);
  assert.equal(model.body.preprocessing.layout, 'nchw');
  assert.deepEqual(model.body.inputs[0].shape.slice(1), [3, 32, 32]);
  assert.match(model.body.sha256, /^[0-9a-f]{64}$/);
  const onnx = await fetch(`${base}/model.onnx`);
  assert.equal(onnx.status, 200);
  assert.deepEqual(new Uint8Array(await onnx.arrayBuffer()), new Uint8Array(readFileSync(MODEL)));
  const page = await fetch(`${base}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<title>demo<\/title>/);
  for (const res of [page, onnx]) {
    assert.equal(res.headers.get('cross-origin-opener-policy'), 'same-origin');
    assert.equal(res.headers.get('cross-origin-embedder-policy'), 'require-corp');
    assert.equal(res.headers.get('cross-origin-resource-policy'), 'same-origin');
  }
  const metrics = await fetch(`${base}/metrics`);
  assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await metrics.text();
  assert.match(text, /skd_http_requests_total\{method="GET",route="\/healthz",status="200"\} 1/);
  assert.match(text, /^process_resident_memory_bytes \d+/m);
});

test('embed: PNG and raw pixels give the unbatched L2-normalised features', async () => {
  const px = syntheticImage(S, [90, 140, 30], 5);
  const res = await request(base, 'POST', '/v1/embed', { images: [await encodeImage(px, S, S), rawImage(px, S, S), { shape: [2, S, S, 3], pixels: [...px, ...px] }] });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.dim, 64);
  assert.equal(res.body.count, 4);
  const expected = await unbatchedEmbedding(px);
  for (const e of res.body.embeddings as number[][]) {
    assert.deepEqual(e, expected);
    assert.ok(Math.abs(Math.hypot(...e) - 1) < 1e-5);
  }
});

test('classify: labels and probabilities; augmentation is seeded per request', async () => {
  const body = { support: support(), queries: queries.map((q) => q.image) };
  const res = await request(base, 'POST', '/v1/classify', body);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body.labels, ['red', 'green', 'blue']);
  assert.equal(res.body.head, 'logreg');
  assert.deepEqual(res.body.predictions.map((p: { label: string }) => p.label), queries.map((q) => q.label));
  for (const p of res.body.predictions) assert.ok(Math.abs(p.probabilities.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-5);

  const aug = { ...body, augment: 3, seed: 11 };
  const a = await request(base, 'POST', '/v1/classify', aug);
  const b = await request(base, 'POST', '/v1/classify', aug);
  const c = await request(base, 'POST', '/v1/classify', { ...aug, seed: 12 });
  assert.equal(a.body.supportImages, 18);
  assert.deepEqual(a.body, b.body);
  assert.notDeepEqual(a.body.predictions, c.body.predictions);
  const proto = await request(base, 'POST', '/v1/classify', { ...body, head: 'proto', labels: ['blue', 'green', 'red'] });
  assert.deepEqual(proto.body.labels, ['blue', 'green', 'red']);
  assert.deepEqual(proto.body.predictions.map((p: { label: string }) => p.label), queries.map((q) => q.label));
});

test('saved classifiers: put, list, get, predict (same answers as classify), delete', async () => {
  const put = await request(base, 'PUT', '/v1/classifiers/colours', { support: support(), augment: 2, seed: 3 });
  assert.equal(put.status, 201, JSON.stringify(put.body));
  assert.deepEqual(put.body.labels, ['red', 'green', 'blue']);
  assert.equal((await request(base, 'PUT', '/v1/classifiers/colours', { support: support(), augment: 2, seed: 3 })).status, 200);
  assert.equal((await request(base, 'PUT', '/v1/classifiers/tmp-1', { support: support().slice(0, 4), head: 'nn' })).status, 201);
  const list = await request(base, 'GET', '/v1/classifiers');
  assert.deepEqual(list.body.classifiers.map((c: { name: string }) => c.name), ['colours', 'tmp-1']);
  const one = await request(base, 'GET', '/v1/classifiers/colours');
  assert.equal(one.body.supportImages, 12);
  assert.equal(one.body.headKind, 'logreg');

  const predicted = await request(base, 'POST', '/v1/classifiers/colours/predict', { queries: queries.map((q) => q.image) });
  assert.equal(predicted.status, 200, JSON.stringify(predicted.body));
  const classified = await request(base, 'POST', '/v1/classify', { support: support(), augment: 2, seed: 3, queries: queries.map((q) => q.image) });
  // A stored head is rebuilt from JSON; its probabilities may differ from a fresh fit's in the last float32 bits.
  assert.equal(predicted.body.predictions.length, classified.body.predictions.length);
  predicted.body.predictions.forEach((p: { label: string; probabilities: number[] }, i: number) => {
    const fresh = classified.body.predictions[i];
    assert.equal(p.label, fresh.label);
    p.probabilities.forEach((v, k) => assert.ok(Math.abs(v - fresh.probabilities[k]) < 1e-6, `query ${i} class ${k}: ${v} vs ${fresh.probabilities[k]}`));
  });

  assert.equal((await request(base, 'DELETE', '/v1/classifiers/tmp-1')).status, 200);
  const gone = await request(base, 'GET', '/v1/classifiers/tmp-1');
  assert.equal(gone.status, 404);
  assert.equal(gone.body.field, 'params.name');
  assert.equal((await request(base, 'DELETE', '/v1/classifiers/tmp-1')).status, 404);
  assert.equal((await request(base, 'POST', '/v1/classifiers/tmp-1/predict', { queries: [queries[0]!.image] })).status, 404);
});

test('classifier records go both ways: GET .../record exports one, PUT .../record imports it, bad ones are 400 naming the field', async () => {
  assert.equal((await request(base, 'PUT', '/v1/classifiers/rec-src', { support: support() })).status, 201);
  const exported = await request(base, 'GET', '/v1/classifiers/rec-src/record');
  assert.equal(exported.status, 200);
  assert.equal(exported.body.format, 'skd-classifier');
  assert.deepEqual(exported.body.labels, ['red', 'green', 'blue']);
  const imported = await request(base, 'PUT', '/v1/classifiers/rec-copy/record', exported.body);
  assert.equal(imported.status, 201, JSON.stringify(imported.body));
  assert.equal(imported.body.name, 'rec-copy');
  assert.equal((await request(base, 'PUT', '/v1/classifiers/rec-copy/record', exported.body)).status, 200);
  const a = await request(base, 'POST', '/v1/classifiers/rec-src/predict', { queries: queries.map((q) => q.image) });
  const b = await request(base, 'POST', '/v1/classifiers/rec-copy/predict', { queries: queries.map((q) => q.image) });
  assert.deepEqual(b.body.predictions, a.body.predictions);

  const bad = async (record: Record<string, unknown>): Promise<{ status: number; field: string; message: string }> => {
    const r = await request(base, 'PUT', '/v1/classifiers/rec-bad/record', record);
    return { status: r.status, field: r.body.field, message: r.body.message };
  };
  const e1 = await bad({ ...exported.body, head: null });
  assert.deepEqual([e1.status, e1.field], [400, 'body.head']);
  const e2 = await bad({ ...exported.body, labels: 'notalist' });
  assert.deepEqual([e2.status, e2.field], [400, 'body.labels']);
  const e3 = await bad({ ...exported.body, labels: ['red', 'green'] });
  assert.deepEqual([e3.status, e3.field], [400, 'body.head.numClasses']);
  assert.match(e3.message, /the head has 3 classes but labels lists 2/);
  const e4 = await bad({ ...exported.body, modelSha256: 'f'.repeat(64) });
  assert.deepEqual([e4.status, e4.field], [409, 'body.modelSha256']);
  assert.equal((await request(base, 'GET', '/v1/classifiers/rec-bad')).status, 404);
  for (const name of ['rec-src', 'rec-copy']) assert.equal((await request(base, 'DELETE', `/v1/classifiers/${name}`)).status, 200);
});

test('bad input answers 4xx JSON naming the field', async () => {
  const img = shots[0]!.png;
  const q = [queries[0]!.image];
  const cases: [string, string, unknown, number, string][] = [
    ['POST', '/v1/classify', { support: [{ label: 'a', image: img }, { label: 'b', image: img }], labels: ['a', 'b', 'c'], queries: q }, 400, 'body.labels[2]'],
    ['POST', '/v1/classify', { support: [{ label: 'a', image: img }, { label: 'x', image: img }], labels: ['a', 'b'], queries: q }, 400, 'body.support[1].label'],
    ['POST', '/v1/classify', { support: [{ label: 'a', image: img }, { label: 'a', image: img }], queries: q }, 400, 'body.support'],
    ['POST', '/v1/classify', { support: support(), queries: q, augment: 6 }, 400, 'body.augment'],
    ['POST', '/v1/classify', { support: support(), queries: q, head: 'svm' }, 400, 'body.head'],
    ['POST', '/v1/classify', { support: support(), queries: q, C: -1 }, 400, 'body.C'],
    ['POST', '/v1/classify', { support: support() }, 400, 'body.queries'],
    ['POST', '/v1/classify', { support: support(), queries: [] }, 400, 'body.queries'],
    ['POST', '/v1/classify', { support: [{ label: 'a', image: img }, { label: 'b', image: 'bm90IGFuIGltYWdl' }], queries: q }, 400, 'body.support[1].image'],
    ['POST', '/v1/classify', { support: [{ label: 'a', image: img }, { label: '', image: img }], queries: q }, 400, 'body.support[1].label'],
    ['POST', '/v1/embed', { images: [{ shape: [65, 32, 32, 3], pixels: [] }] }, 413, 'body.images'],
    ['POST', '/v1/embed', { images: [{ shape: [300, 300, 3], pixels: [] }] }, 413, 'body.images[0].shape'],
    ['POST', '/v1/embed', { images: [{ shape: [1, 1, 3], pixels: [0, 0, 'x'] }] }, 400, 'body.images[0].pixels[2]'],
    ['POST', '/v1/embed', { images: [null] }, 400, 'body.images[0]'],
    ['POST', '/v1/embed', { imgs: [img] }, 400, 'body.images'],
    ['POST', '/v1/embed', [img], 400, 'body'],
    ['PUT', '/v1/classifiers/..%2F..%2Fetc', { support: support() }, 400, 'params.name'],
    ['PUT', `/v1/classifiers/${'x'.repeat(65)}`, { support: support() }, 400, 'params.name'],
    ['PUT', '/v1/classifiers/a.json', { support: support() }, 400, 'params.name'],
    ['GET', '/v1/classifiers/no-such', undefined, 404, 'params.name'],
    ['GET', '/v2/nothing', undefined, 404, 'url'],
  ];
  for (const [method, path, body, status, field] of cases) {
    const res = await request(base, method, path, body);
    assert.equal(res.status, status, `${method} ${path} ${JSON.stringify(body)?.slice(0, 200)}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.field, field, `${method} ${path}: ${JSON.stringify(res.body)}`);
    assert.equal(typeof res.body.message, 'string');
  }
  const big = await request(base, 'POST', '/v1/embed', JSON.stringify({ images: ['A'.repeat(3 * 1024 * 1024)] }));
  assert.equal(big.status, 413);
  assert.equal(big.body.field, 'body');
});

test('garbage of many kinds never gets a 500 and never stops the server', async () => {
  const bodies: [string, string | Uint8Array, string?][] = [
    ['/v1/embed', ''], ['/v1/embed', 'null'], ['/v1/embed', '[]'], ['/v1/embed', '"x"'], ['/v1/embed', '{"images":'],
    ['/v1/embed', '{"images":"abc"}'], ['/v1/embed', '{"images":[{"shape":[1,1,3]}]}'], ['/v1/embed', '{"images":[{"shape":[1e9,1e9,3],"pixels":[]}]}'],
    ['/v1/embed', '{"images":[{"shape":[-1,1,3],"pixels":[]}]}'], ['/v1/embed', '{"images":[{"shape":[1,1,3],"pixels":[1,2,3],"extra":1}]}'],
    ['/v1/embed', '{"__proto__":{"x":1},"images":[]}'], ['/v1/embed', '{"images":["data:image/png;base64,iVBORw0KGgo="]}'],
    ['/v1/embed', new Uint8Array([0xff, 0xfe, 0x00, 0x01, 0x80])], ['/v1/embed', '<xml/>', 'application/xml'], ['/v1/embed', 'images=1', 'application/x-www-form-urlencoded'],
    ['/v1/classify', '{"support":[{"label":1,"image":"x"}],"queries":["x"]}'], ['/v1/classify', '{"support":{},"queries":{}}'],
    ['/v1/classify', `{"support":[{"label":"a","image":"${shots[0]!.png}"},{"label":"b","image":"${shots[1]!.png}"}],"queries":["${shots[0]!.png}"],"seed":-1}`],
    ['/v1/classify', `{"support":[{"label":"a","image":"${shots[0]!.png}"},{"label":"b","image":"${shots[1]!.png}"}],"queries":["${shots[0]!.png}"],"augment":1.5}`],
    ['/v1/classifiers/x/predict', '{"queries":[{"shape":[1,1,1,1,3],"pixels":[0,0,0]}]}'],
    ['/v1/classifiers/%00/predict', '{"queries":[]}'], ['/v1/classifiers/%E0%A4%A/predict', '{}'], ['/healthz', '{}'],
  ];
  for (const [path, body, type] of bodies) {
    const res = await request(base, 'POST', path, body, { 'content-type': type ?? 'application/json' });
    assert.ok(res.status >= 400 && res.status < 500, `POST ${path} ${String(body).slice(0, 80)} -> ${res.status} ${JSON.stringify(res.body)}`);
    assert.equal(typeof res.body.field, 'string', `POST ${path}: ${JSON.stringify(res.body)}`);
  }
  assert.equal((await request(base, 'GET', '/healthz')).status, 200);
});

test('a burst of concurrent requests is batched and answers equal unbatched ones', async () => {
  await request(base, 'PUT', '/v1/classifiers/burst', { support: support() });
  const images = Array.from({ length: 12 }, (_, i) => syntheticImage(S, COLOURS[i % 5]!, 500 + i));
  const expectedEmbeddings = await Promise.all(images.map((px) => unbatchedEmbedding(px)));
  const expectedPredictions = [];
  for (const px of images) expectedPredictions.push((await request(base, 'POST', '/v1/classifiers/burst/predict', { queries: [rawImage(px, S, S)] })).body.predictions[0]);
  const before = server.ctx.metrics.batchSize.render();
  const n = 300;
  const answers = await Promise.all(Array.from({ length: n }, (_, i) => {
    const k = i % images.length;
    return i % 2 === 0
      ? request(base, 'POST', '/v1/embed', { images: [rawImage(images[k]!, S, S)] }).then((r) => ({ r, k, kind: 'embed' as const }))
      : request(base, 'POST', '/v1/classifiers/burst/predict', { queries: [rawImage(images[k]!, S, S)] }).then((r) => ({ r, k, kind: 'predict' as const }));
  }));
  for (const { r, k, kind } of answers) {
    assert.equal(r.status, 200, JSON.stringify(r.body));
    if (kind === 'embed') assert.deepEqual(r.body.embeddings[0], expectedEmbeddings[k]);
    else assert.deepEqual(r.body.predictions[0], expectedPredictions[k]);
  }
  assert.notEqual(server.ctx.metrics.batchSize.render(), before);
  const metrics = (await request(base, 'GET', '/metrics')).body as string;
  const runs = Number(/^skd_batch_size_images_count (\d+)/m.exec(metrics)?.[1]);
  const imagesRun = Number(/^skd_batch_size_images_sum (\d+)/m.exec(metrics)?.[1]);
  assert.ok(imagesRun / runs > 1.5, `burst should share runs: ${imagesRun} images in ${runs} runs`);
});

test('stored classifiers survive a restart with the same store', async () => {
  const queriesBody = { queries: queries.map((q) => q.image) };
  const beforeRestart = await request(base, 'POST', '/v1/classifiers/colours/predict', queriesBody);
  await server.close();
  server = await start(join(dir, 'store'));
  base = server.url;
  const list = await request(base, 'GET', '/v1/classifiers');
  assert.deepEqual(list.body.classifiers.map((c: { name: string }) => c.name), ['burst', 'colours']);
  const afterRestart = await request(base, 'POST', '/v1/classifiers/colours/predict', queriesBody);
  assert.deepEqual(afterRestart.body, beforeRestart.body);
  // Without a built demo, "/" describes the API instead.
  const root = await request(base, 'GET', '/');
  assert.ok(root.body.routes.includes('POST /v1/classify'));
});

test('a full queue answers 503 with Retry-After, and the server recovers', async () => {
  const slow = new FakeExtractor(S, 150);
  const s = await startServer({ extractor: slow, modelPath: MODEL, storeDir: join(dir, 'store-fake'), host: '127.0.0.1', port: 0, limits: { maxBatch: 1, batchWaitMs: 0, maxQueuedImages: 2 } });
  try {
    const one = () => request(s.url, 'POST', '/v1/embed', { images: [rawImage(syntheticImage(S, [1, 2, 3], 1), S, S)] });
    const results = await Promise.all(Array.from({ length: 8 }, one));
    const refused = results.filter((r) => r.status === 503);
    assert.ok(refused.length >= 1, `statuses ${results.map((r) => r.status)}`);
    for (const r of results) assert.ok(r.status === 200 || r.status === 503);
    assert.equal(refused[0]!.headers.get('retry-after'), '1');
    assert.equal(refused[0]!.body.field, 'server');
    assert.equal((await one()).status, 200);
    assert.match((await request(s.url, 'GET', '/metrics')).body, /^skd_queue_rejections_total [1-9]/m);
  } finally {
    await s.close();
  }
  assert.ok(slow.closed);
});
