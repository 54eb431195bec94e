/**
 * HTTP conventions of `skd serve` (in-process, a deterministic stand-in extractor): 405 with Allow, OPTIONS,
 * content types, CORS only for the origins given, the OpenAPI document, the augmentation default and limit,
 * and error answers that name the field at fault.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createServer } from '../infer/server/server.js';
import { parseCorsOrigins } from '../infer/server/http-conventions.js';
import { classifyBody, embedBody, nameParams, predictBody, putClassifierBody } from '../infer/server/schemas.js';
import { FIXTURES } from './helpers/run-skd.js';
import { COLOURS, FakeExtractor, rawImage, syntheticImage } from './serve-helpers.js';

const MODEL = join(FIXTURES, 'models', 'resnet12_w8-16-32-64_pytorch.onnx');
const S = 32;
let dir: string;
let app: FastifyInstance;
let corsApp: FastifyInstance;
let anyOriginApp: FastifyInstance;

async function build(name: string, options: { corsOrigins?: string[]; maxAugment?: number; web?: boolean } = {}): Promise<FastifyInstance> {
  let webDir: string | undefined;
  if (options.web) {
    webDir = join(dir, `${name}-web`);
    mkdirSync(webDir);
    writeFileSync(join(webDir, 'index.html'), '<!doctype html><title>demo</title>');
  }
  const server = await createServer({
    extractor: new FakeExtractor(S), modelPath: MODEL, storeDir: join(dir, name), webDir, corsOrigins: options.corsOrigins, version: '9.9.9',
    limits: { maxAugment: options.maxAugment ?? 10 },
  });
  return server.app;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skd-serve-http-'));
  app = await build('plain', { web: true });
  corsApp = await build('cors', { corsOrigins: parseCorsOrigins(['https://app.example.com,http://localhost:3000']) });
  anyOriginApp = await build('any', { corsOrigins: parseCorsOrigins(['*']) });
});

after(async () => {
  await app?.close();
  await corsApp?.close();
  await anyOriginApp?.close();
  rmSync(dir, { recursive: true, force: true });
});

const image = (k: number, seed: number) => rawImage(syntheticImage(S, COLOURS[k]!, seed), S, S);
const support = () => [{ label: 'red', image: image(0, 1) }, { label: 'green', image: image(1, 2) }, { label: 'red', image: image(0, 3) }];

test('a known path asked with another method answers 405 with Allow; unknown paths stay 404', async () => {
  const cases: [string, string, string][] = [
    ['GET', '/v1/embed', 'POST, OPTIONS'],
    ['PUT', '/v1/classify', 'POST, OPTIONS'],
    ['DELETE', '/v1/model', 'GET, HEAD, OPTIONS'],
    ['POST', '/healthz', 'GET, HEAD, OPTIONS'],
    ['POST', '/v1/classifiers/abc', 'GET, HEAD, PUT, DELETE, OPTIONS'],
    ['GET', '/v1/classifiers/abc/predict', 'POST, OPTIONS'],
    ['PATCH', '/v1/classifiers', 'GET, HEAD, OPTIONS'],
  ];
  for (const [method, url, allow] of cases) {
    const res = await app.inject({ method: method as 'GET', url, payload: method === 'GET' || method === 'DELETE' ? undefined : {} });
    assert.equal(res.statusCode, 405, `${method} ${url}: ${res.body}`);
    assert.equal(res.headers.allow, allow, `${method} ${url}`);
    const body = res.json();
    assert.equal(body.error, 'Method Not Allowed');
    assert.equal(body.field, 'method');
    assert.match(body.message, new RegExp(`${method} is not allowed on ${url.replace(/\//g, '\\/')}`));
  }
  for (const [method, url] of [['GET', '/v2/nothing'], ['POST', '/v1/nothing'], ['DELETE', '/v1/classifiers/a/b']]) {
    const res = await app.inject({ method: method as 'GET', url });
    assert.equal(res.statusCode, 404, `${method} ${url}: ${res.body}`);
    assert.equal(res.headers.allow, undefined);
    assert.equal(res.json().field, 'url');
  }
  // The demo's files are still served; the static catch-all does not turn unknown paths into 405s.
  assert.equal((await app.inject({ method: 'GET', url: '/' })).statusCode, 200);
  assert.equal((await app.inject({ method: 'GET', url: '/nothing.js' })).statusCode, 404);
});

test('OPTIONS answers 204 with Allow on known paths, 404 elsewhere', async () => {
  const res = await app.inject({ method: 'OPTIONS', url: '/v1/classifiers/abc' });
  assert.equal(res.statusCode, 204);
  assert.equal(res.headers.allow, 'GET, HEAD, PUT, DELETE, OPTIONS');
  assert.equal((await app.inject({ method: 'OPTIONS', url: '/v1/nothing' })).statusCode, 404);
});

test('only application/json bodies in UTF-8 are taken: other types and charsets 415, malformed content types 400', async () => {
  const json = JSON.stringify({ images: [image(0, 1)] });
  for (const type of ['text/plain', 'text/plain; charset=utf-8', 'application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream']) {
    const res = await app.inject({ method: 'POST', url: '/v1/embed', headers: { 'content-type': type }, payload: json });
    assert.equal(res.statusCode, 415, `${type}: ${res.body}`);
    assert.equal(res.json().field, 'headers.content-type');
  }
  for (const type of ['application/json; charset=utf-16', 'application/json; charset="latin1"', 'application/json;CHARSET=ascii']) {
    const res = await app.inject({ method: 'POST', url: '/v1/embed', headers: { 'content-type': type }, payload: json });
    assert.equal(res.statusCode, 415, `${type}: ${res.body}`);
    assert.match(res.json().message, /must be UTF-8/);
  }
  for (const type of ['application/json; ;;;==', 'application/json; charset', 'application/json; =utf-8', 'application/json;charset="utf-8', 'application/json/x', 'application json', '/json', 'application/json; a=b c']) {
    const res = await app.inject({ method: 'POST', url: '/v1/embed', headers: { 'content-type': type }, payload: json });
    assert.equal(res.statusCode, 400, `${type}: ${res.body}`);
    assert.equal(res.json().field, 'headers.content-type');
    assert.match(res.json().message, /malformed content-type/);
  }
  for (const type of ['application/json', 'application/json; charset=utf-8', 'Application/JSON;charset=UTF-8', 'application/json ; charset="utf-8"', 'application/json;;', 'application/json; charset=utf8']) {
    const res = await app.inject({ method: 'POST', url: '/v1/embed', headers: { 'content-type': type }, payload: json });
    assert.equal(res.statusCode, 200, `${type}: ${res.body}`);
  }
});

test('augment defaults to skd eval\'s 5 copies (capped by --max-augment) and a value over the limit is a 400 naming it', async () => {
  const queries = [image(0, 9)];
  const res = await app.inject({ method: 'POST', url: '/v1/classify', payload: { support: support(), queries } });
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.json().supportImages, 3 * 5);
  const none = await app.inject({ method: 'POST', url: '/v1/classify', payload: { support: support(), queries, augment: 0 } });
  assert.equal(none.json().supportImages, 3);
  const put = await app.inject({ method: 'PUT', url: '/v1/classifiers/defaults', payload: { support: support() } });
  assert.equal(put.statusCode, 201, put.body);
  assert.equal(put.json().supportImages, 15);
  assert.equal(put.json().augment, 5);

  const capped = await build('capped', { maxAugment: 2 });
  try {
    const r = await capped.inject({ method: 'POST', url: '/v1/classify', payload: { support: support(), queries } });
    assert.equal(r.json().supportImages, 3 * 2);
  } finally {
    await capped.close();
  }

  for (const augment of [11, 1000]) {
    const over = await app.inject({ method: 'POST', url: '/v1/classify', payload: { support: support(), queries, augment } });
    assert.equal(over.statusCode, 400, over.body);
    assert.equal(over.json().field, 'body.augment');
    assert.match(over.json().message, /at most 10\b.*--max-augment.*got/);
  }
});

test('no CORS headers without --cors, for simple and preflight requests', async () => {
  const simple = await app.inject({ method: 'GET', url: '/v1/model', headers: { origin: 'https://app.example.com' } });
  assert.equal(simple.statusCode, 200);
  const preflight = await app.inject({ method: 'OPTIONS', url: '/v1/embed', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } });
  for (const res of [simple, preflight]) {
    for (const name of Object.keys(res.headers)) assert.ok(!name.startsWith('access-control-'), `${name} without --cors`);
  }
});

test('--cors: allowed origins get CORS headers and preflights; others get none', async () => {
  const ok = await corsApp.inject({ method: 'POST', url: '/v1/embed', headers: { origin: 'https://app.example.com' }, payload: { images: [image(0, 1)] } });
  assert.equal(ok.statusCode, 200);
  assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example.com');
  assert.match(String(ok.headers.vary), /origin/i);
  assert.match(String(ok.headers['access-control-expose-headers']), /retry-after/);
  assert.match(String(ok.headers['access-control-expose-headers']), /\betag\b/);
  // Error answers carry them too, so that a page can read the message.
  const bad = await corsApp.inject({ method: 'POST', url: '/v1/embed', headers: { origin: 'http://localhost:3000' }, payload: { images: [] } });
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.headers['access-control-allow-origin'], 'http://localhost:3000');

  const preflight = await corsApp.inject({ method: 'OPTIONS', url: '/v1/classifiers/x', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'content-type' } });
  assert.equal(preflight.statusCode, 204);
  assert.equal(preflight.headers['access-control-allow-origin'], 'https://app.example.com');
  assert.equal(preflight.headers['access-control-allow-methods'], 'GET, HEAD, PUT, DELETE');
  assert.equal(preflight.headers['access-control-allow-headers'], 'content-type, if-match, if-none-match');
  assert.ok(Number(preflight.headers['access-control-max-age']) > 0);

  const wrongMethod = await corsApp.inject({ method: 'OPTIONS', url: '/v1/embed', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'DELETE' } });
  assert.equal(wrongMethod.statusCode, 405);
  assert.equal(wrongMethod.json().field, 'headers.access-control-request-method');

  const stranger = await corsApp.inject({ method: 'POST', url: '/v1/embed', headers: { origin: 'https://evil.example.net' }, payload: { images: [image(0, 1)] } });
  assert.equal(stranger.headers['access-control-allow-origin'], undefined);
  const strangerPreflight = await corsApp.inject({ method: 'OPTIONS', url: '/v1/embed', headers: { origin: 'https://evil.example.net', 'access-control-request-method': 'POST' } });
  assert.equal(strangerPreflight.statusCode, 403);
  assert.equal(strangerPreflight.json().field, 'headers.origin');
  assert.equal(strangerPreflight.headers['access-control-allow-origin'], undefined);

  const any = await anyOriginApp.inject({ method: 'GET', url: '/healthz', headers: { origin: 'https://whoever.example' } });
  assert.equal(any.headers['access-control-allow-origin'], '*');
});

test('--cors values: origins, comma lists and *; anything else is refused by name', () => {
  assert.deepEqual(parseCorsOrigins(['https://a.example', 'http://localhost:3000,https://b.example:8443/', 'https://a.example']), ['https://a.example', 'http://localhost:3000', 'https://b.example:8443']);
  assert.deepEqual(parseCorsOrigins(['*']), ['*']);
  assert.deepEqual(parseCorsOrigins([]), []);
  for (const bad of ['example.com', 'https://a.example/path', 'ftp://a.example', 'https://', 'null']) {
    assert.throws(() => parseCorsOrigins([bad]), (err: Error) => err instanceof RangeError && err.message.includes(`'${bad}'`), bad);
  }
});

test('GET /openapi.json describes every route with the schemas fastify validates against', async () => {
  const res = await app.inject({ method: 'GET', url: '/openapi.json' });
  assert.equal(res.statusCode, 200);
  const doc = res.json();
  assert.equal(doc.openapi, '3.1.0');
  assert.equal(doc.info.version, '9.9.9');
  const operations = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
  for (const op of [
    'DELETE /v1/classifiers/{name}', 'GET /healthz', 'GET /metrics', 'GET /model.onnx', 'GET /openapi.json', 'GET /v1/classifiers',
    'GET /v1/classifiers/{name}', 'GET /v1/model', 'POST /v1/classifiers/{name}/predict', 'POST /v1/classify', 'POST /v1/embed', 'PUT /v1/classifiers/{name}',
  ]) assert.ok(operations.includes(op), `${op} is not in the document`);
  // Everything documented is a route of the server, and nothing is documented twice.
  assert.equal(new Set(operations).size, operations.length);
  for (const op of operations) {
    const [method, path] = op.split(' ') as [string, string];
    assert.ok(app.hasRoute({ method: method as 'GET', url: path.replace(/\{([^}]+)\}/g, ':$1') }), `${op} is documented but not served`);
  }
  const bodyOf = (path: string, method: string) => doc.paths[path][method].requestBody.content['application/json'].schema;
  assert.deepEqual(bodyOf('/v1/embed', 'post'), JSON.parse(JSON.stringify(embedBody)));
  assert.deepEqual(bodyOf('/v1/classify', 'post'), JSON.parse(JSON.stringify(classifyBody)));
  assert.deepEqual(bodyOf('/v1/classifiers/{name}', 'put'), JSON.parse(JSON.stringify(putClassifierBody)));
  assert.deepEqual(bodyOf('/v1/classifiers/{name}/predict', 'post'), JSON.parse(JSON.stringify(predictBody)));
  const put = doc.paths['/v1/classifiers/{name}'].put;
  assert.deepEqual(put.parameters, [{ name: 'name', in: 'path', required: true, schema: { type: 'string', pattern: nameParams.properties.name.pattern }, description: nameParams.properties.name.description }]);
  assert.ok(put.responses['201'] && put.responses['200'] && put.responses['400'] && put.responses['415']);
  assert.match(doc.paths['/v1/classify'].post.requestBody.content['application/json'].schema.properties.augment.description, /default 5/);
  const ids = new Set<string>();
  // Every operation has a summary, an id of its own and responses; every $ref points into the document.
  for (const ops of Object.values(doc.paths as Record<string, Record<string, { summary: string; operationId: string; responses: Record<string, unknown> }>>)) {
    for (const op of Object.values(ops)) {
      assert.ok(op.summary.length > 0);
      assert.ok(!ids.has(op.operationId), op.operationId);
      ids.add(op.operationId);
      assert.ok(Object.keys(op.responses).length > 0);
    }
  }
  const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? [];
  assert.ok(refs.length > 0);
  for (const ref of refs) {
    const target = ref.slice(8, -1).replace(/^#\//, '').split('/').reduce((node: any, key) => node?.[key], doc);
    assert.ok(target !== undefined, ref);
  }
});

test('the static files\' traversal refusals name the URL, not the body', async () => {
  for (const url of ['/a%00b', '/%5c..%5cetc%5cpasswd', '/..%5c..%5cetc']) {
    const res = await app.inject({ method: 'GET', url });
    assert.ok(res.statusCode === 403 || res.statusCode === 404, `${url}: ${res.statusCode}`);
    const body = res.json();
    assert.equal(body.field, 'url', `${url}: ${res.body}`);
    if (res.statusCode === 403) assert.equal(body.error, 'Forbidden');
  }
});
