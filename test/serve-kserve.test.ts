/**
 * The KServe v2 (Open Inference Protocol) routes and the remote backbone: v2 infer gives a local session's
 * features; an `skd serve --backbone-url` pointed at another skd's v2 endpoint answers classify and predict as a
 * local session does; a backbone that is down or silent gives 502 / 504 and an unhealthy /healthz.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RemoteBackbone } from '../infer/remote-backbone.js';
import { startServer, type RunningServer } from '../infer/server/server.js';
import { nhwcToNchw } from '../infer/layout.js';
import { FeatureExtractor } from '../infer/session.js';
import { freePort } from './helpers/postgres.js';
import { FIXTURES } from './helpers/run-skd.js';
import { spawnServe } from './helpers/serve-process.js';
import { COLOURS, rawImage, request, syntheticImage } from './serve-helpers.js';

const MODEL = join(FIXTURES, 'models', 'resnet12_w8-16-32-64_pytorch.onnx');
const OVERRIDES = { layout: 'nchw' as const, size: 32, mean: [0.5071, 0.4867, 0.4408] as [number, number, number], std: [0.2675, 0.2565, 0.2761] as [number, number, number] };
const FOREIGN = ['--layout', 'nchw', '--size', '32', '--mean', '0.5071,0.4867,0.4408', '--std', '0.2675,0.2565,0.2761', '--device', 'cpu', '--threads', '1'];

let dir: string;
let local: RunningServer;
let reference: FeatureExtractor;
let modelUrl: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skd-kserve-'));
  const extractor = await FeatureExtractor.open(MODEL, { device: 'cpu', threads: 1, overrides: OVERRIDES });
  local = await startServer({ extractor, modelPath: MODEL, storeDir: join(dir, 'local'), host: '127.0.0.1', port: 0, modelName: 'backbone' });
  modelUrl = `${local.url}/v2/models/backbone`;
  reference = await FeatureExtractor.open(MODEL, { device: 'cpu', threads: 1, overrides: OVERRIDES });
});

after(async () => {
  await local?.close();
  await reference?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** n normalised NHWC images, as the session's extract takes them. */
function preprocessed(n: number): Float32Array {
  const out = new Float32Array(n * 32 * 32 * 3);
  for (let i = 0; i < n; i++) {
    const px = syntheticImage(32, COLOURS[i % COLOURS.length]!, 7 + i);
    for (let j = 0; j < px.length; j++) out[i * px.length + j] = (px[j]! / 255 - OVERRIDES.mean[j % 3]!) / OVERRIDES.std[j % 3]!;
  }
  return out;
}

test('v2 health, metadata and infer: features equal a local session\'s within 1e-6', async () => {
  assert.deepEqual((await request(local.url, 'GET', '/v2/health/live')).body, { live: true });
  assert.deepEqual((await request(local.url, 'GET', '/v2/health/ready')).body, { ready: true });
  assert.deepEqual((await request(local.url, 'GET', '/v2/models/backbone/ready')).body, { name: 'backbone', ready: true });
  const meta = await request(local.url, 'GET', '/v2/models/backbone');
  assert.deepEqual(meta.body, {
    name: 'backbone', versions: ['1'], platform: 'onnxruntime_onnx',
    inputs: [{ name: reference.preprocessing.inputName, datatype: 'FP32', shape: [-1, 3, 32, 32] }],
    outputs: [{ name: reference.preprocessing.outputName, datatype: 'FP32', shape: [-1, reference.featureDim] }],
  });
  const n = 5;
  const nhwc = preprocessed(n);
  const nchw = new Float32Array(nhwc.length);
  nhwcToNchw(nhwc, nchw, n, 32, 32, 3);
  const expected = await reference.extract(nhwc, n);
  const answer = await request(local.url, 'POST', '/v2/models/backbone/infer', {
    id: 'req-1', inputs: [{ name: reference.preprocessing.inputName, shape: [n, 3, 32, 32], datatype: 'FP32', data: Array.from(nchw) }],
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.equal(answer.body.id, 'req-1');
  assert.equal(answer.body.model_name, 'backbone');
  const out = answer.body.outputs[0];
  assert.deepEqual([out.name, out.datatype, out.shape], [reference.preprocessing.outputName, 'FP32', [n, reference.featureDim]]);
  assert.equal(out.data.length, expected.length);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(out.data[i] - expected[i]!) <= 1e-6, `feature ${i}: ${out.data[i]} vs ${expected[i]}`);
  // Nested data (one array per image) is the same tensor; the versioned route answers too.
  const nested = Array.from({ length: n }, (_, i) => Array.from(nchw.subarray(i * 3072, (i + 1) * 3072)));
  const again = await request(local.url, 'POST', '/v2/models/backbone/versions/1/infer', { inputs: [{ name: reference.preprocessing.inputName, shape: [n, 3, 32, 32], datatype: 'FP32', data: nested }] });
  assert.deepEqual(again.body.outputs[0].data, out.data);
});

test('v2 errors answer {"error"} naming the field', async () => {
  const input = reference.preprocessing.inputName;
  const cases: [string, unknown, number, string][] = [
    ['/v2/models/other/infer', { inputs: [{ name: input, shape: [1, 3, 32, 32], datatype: 'FP32', data: [] }] }, 404, 'url'],
    ['/v2/models/backbone/infer', { inputs: [{ name: input, shape: [1, 3, 16, 16], datatype: 'FP32', data: [] }] }, 400, 'body.inputs[0].shape'],
    ['/v2/models/backbone/infer', { inputs: [{ name: input, shape: [1, 3, 32, 32], datatype: 'INT8', data: [] }] }, 400, 'body.inputs[0].datatype'],
    ['/v2/models/backbone/infer', { inputs: [{ name: 'nope', shape: [1, 3, 32, 32], datatype: 'FP32', data: [] }] }, 400, 'body.inputs[0].name'],
    ['/v2/models/backbone/infer', { inputs: [{ name: input, shape: [1, 3, 32, 32], datatype: 'FP32', data: [1, 2, 3] }] }, 400, 'body.inputs[0].data'],
    ['/v2/models/backbone/infer', { inputs: [{ name: input, shape: [1, 3, 32, 32], datatype: 'FP32', data: ['NaN', ...new Array(3071).fill(0)] }] }, 400, 'body.inputs[0].data'],
    ['/v2/models/backbone/infer', { inputs: [] }, 400, 'body.inputs'],
  ];
  for (const [path, body, status, field] of cases) {
    const res = await request(local.url, 'POST', path, body);
    assert.equal(res.status, status, `${path} ${JSON.stringify(res.body)}`);
    assert.equal(res.body.field, field);
    assert.equal(typeof res.body.error, 'string');
  }
});

const support = [0, 1, 2].flatMap((k) => [0, 1].map((j) => ({ label: `c${k}`, image: rawImage(syntheticImage(32, COLOURS[k]!, 10 * k + j), 32, 32) })));
const queries = [0, 1, 2, 0, 1].map((k, i) => rawImage(syntheticImage(32, COLOURS[k]!, 300 + i), 32, 32));

test('skd serve --backbone-url (another skd serve\'s v2 endpoint) answers classify and predict as a local session does', async () => {
  const remote = await spawnServe(['--model', MODEL, '--store', join(dir, 'remote'), '--backbone-url', modelUrl, ...FOREIGN]);
  try {
    assert.match(remote.stderr(), /remote http:\/\/127\.0\.0\.1:\d+\/v2\/models\/backbone/);
    const classify = { support, queries, augment: 2, seed: 3 };
    const viaRemote = await request(remote.url, 'POST', '/v1/classify', classify);
    const viaLocal = await request(local.url, 'POST', '/v1/classify', classify);
    assert.equal(viaRemote.status, 200, JSON.stringify(viaRemote.body));
    assert.deepEqual(viaRemote.body, viaLocal.body);
    for (const base of [remote.url, local.url]) assert.equal((await request(base, 'PUT', '/v1/classifiers/k', { support })).status, 201);
    const predictRemote = await request(remote.url, 'POST', '/v1/classifiers/k/predict', { queries });
    const predictLocal = await request(local.url, 'POST', '/v1/classifiers/k/predict', { queries });
    assert.equal(predictRemote.status, 200);
    assert.deepEqual(predictRemote.body, predictLocal.body);
    const health = await request(remote.url, 'GET', '/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.body.backbone.ok, true);
    assert.equal(health.body.backbone.url, modelUrl);
  } finally {
    await remote.stop();
  }
});

test('a backbone that is down gives 502, one that does not answer gives 504, and /healthz says so', async () => {
  const port = await freePort();
  const down = await RemoteBackbone.open(MODEL, `http://127.0.0.1:${port}/v2/models/backbone`, { overrides: OVERRIDES }, { retries: 1, backoffMs: 10, log: () => undefined });
  const s1 = await startServer({ extractor: down, modelPath: MODEL, storeDir: join(dir, 'down'), host: '127.0.0.1', port: 0 });
  // A server that accepts connections and never answers.
  const sockets: Socket[] = [];
  const silent: Server = createTcpServer((s) => sockets.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const silentPort = (silent.address() as { port: number }).port;
  const slow = await RemoteBackbone.open(MODEL, `http://127.0.0.1:${silentPort}/v2/models/backbone`, { overrides: OVERRIDES }, { timeoutMs: 300, retries: 1, backoffMs: 10, log: () => undefined });
  const s2 = await startServer({ extractor: slow, modelPath: MODEL, storeDir: join(dir, 'slow'), host: '127.0.0.1', port: 0 });
  try {
    const embed = { images: [queries[0]] };
    const r1 = await request(s1.url, 'POST', '/v1/embed', embed);
    assert.equal(r1.status, 502, JSON.stringify(r1.body));
    assert.equal(r1.body.field, 'backbone');
    assert.match(r1.body.message, /unreachable.*2 attempts/);
    const h1 = await request(s1.url, 'GET', '/healthz');
    assert.equal(h1.status, 503);
    assert.equal(h1.body.backbone.ok, false);
    assert.equal((await request(s1.url, 'GET', '/v2/health/ready')).status, 503);
    const t0 = Date.now();
    const r2 = await request(s2.url, 'POST', '/v1/embed', embed);
    assert.equal(r2.status, 504, JSON.stringify(r2.body));
    assert.match(r2.body.message, /did not answer within 300 ms/);
    assert.ok(Date.now() - t0 < 5000);
  } finally {
    await s1.close();
    await s2.close();
    for (const s of sockets) s.destroy();
    silent.close();
  }
});
