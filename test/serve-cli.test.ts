/**
 * `skd serve` as a process: it prints its address, survives a crash right after acknowledging a write
 * (SIGKILL) with the classifier intact, and on SIGTERM finishes the request in flight before exiting 0.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, runSkd } from './helpers/run-skd.js';
import { spawnServe, type ServeProcess } from './helpers/serve-process.js';
import { COLOURS, rawImage, request, syntheticImage } from './serve-helpers.js';

const MODEL = join(FIXTURES, 'models', 'resnet12_w8-16-32-64_pytorch.onnx');
const FOREIGN = ['--layout', 'nchw', '--size', '32', '--mean', '0.5071,0.4867,0.4408', '--std', '0.2675,0.2565,0.2761', '--device', 'cpu', '--threads', '1'];
const dir = mkdtempSync(join(tmpdir(), 'skd-serve-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** skd serve on the fixture model, its store in this test's folder. */
const serve = (extra: string[]): Promise<ServeProcess> => spawnServe(['--model', MODEL, '--store', join(dir, 'store'), ...FOREIGN, ...extra]);

const support = [0, 1, 2].flatMap((k) => [0, 1].map((j) => ({ label: `c${k}`, image: rawImage(syntheticImage(32, COLOURS[k]!, 10 * k + j), 32, 32) })));

test('an acknowledged classifier survives SIGKILL right after the answer', async () => {
  const a = await serve([]);
  assert.match(a.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const put = await request(a.url, 'PUT', '/v1/classifiers/kept', { support });
  assert.equal(put.status, 201, JSON.stringify(put.body));
  a.child.kill('SIGKILL');
  await a.exited;
  assert.deepEqual(readdirSync(join(dir, 'store')), ['kept.json']);
  // A record that would break predictions is skipped at start, with one warning line.
  const kept = JSON.parse(readFileSync(join(dir, 'store', 'kept.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'store', 'broken.json'), JSON.stringify({ ...kept, name: 'broken', head: null }));
  const b = await serve([]);
  try {
    for (let i = 0; i < 100 && !/broken\.json/.test(b.stderr()); i++) await new Promise((r) => setTimeout(r, 20));
    const warnings = b.stderr().split('\n').filter((line) => /broken\.json/.test(line));
    assert.equal(warnings.length, 1, b.stderr());
    assert.match(warnings[0]!, /skipped broken\.json: head: must be a fitted head/);
    assert.equal((await request(b.url, 'GET', '/v1/classifiers/broken')).status, 404);
    const got = await request(b.url, 'GET', '/v1/classifiers/kept');
    assert.equal(got.status, 200);
    assert.deepEqual(got.body.labels, ['c0', 'c1', 'c2']);
    const predicted = await request(b.url, 'POST', '/v1/classifiers/kept/predict', { queries: [support[2]!.image] });
    assert.equal(predicted.body.predictions[0].label, 'c1');
  } finally {
    b.child.kill('SIGKILL');
    await b.exited;
  }
});

test('SIGTERM lets the request in flight finish, then exits 0', async () => {
  // A long batching wait keeps the request in flight while the signal arrives.
  const s = await serve(['--batch-wait-ms', '600']);
  const inFlight = request(s.url, 'POST', '/v1/embed', { images: [support[0]!.image] });
  // Signal only once the request is inside the server, waiting in the batcher.
  for (let i = 0; i < 500 && (await request(s.url, 'GET', '/healthz')).body.queuedImages < 1; i++) await new Promise((r) => setTimeout(r, 10));
  s.child.kill('SIGTERM');
  const res = await inFlight;
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.embeddings.length, 1);
  assert.equal(await s.exited, 0);
  assert.match(s.stderr(), /SIGTERM: finishing requests in flight/);
});

test('a missing model ends with one clear line', async () => {
  const missing = await runSkd(['serve', '--model', join(dir, 'nope.onnx'), '--port', '0']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /model file not found/);
  assert.doesNotMatch(missing.stderr, /\n\s+at /);
});

test('--cors reaches the server; bad --cors or --decode-budget-ms values end with one clear line', async () => {
  const s = await serve(['--cors', 'https://a.example', '--cors', 'http://localhost:3000,https://b.example']);
  try {
    for (const origin of ['https://a.example', 'https://b.example']) {
      const res = await request(s.url, 'GET', '/healthz', undefined, { origin });
      assert.equal(res.headers.get('access-control-allow-origin'), origin);
    }
    const other = await request(s.url, 'GET', '/healthz', undefined, { origin: 'https://c.example' });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    const doc = await request(s.url, 'GET', '/openapi.json');
    assert.equal(doc.body.openapi, '3.1.0');
  } finally {
    s.child.kill('SIGTERM');
    await s.exited;
  }
  for (const [flags, pattern] of [[['--cors', 'a.example'], /--cors expects origins .*'a\.example'/], [['--decode-budget-ms', '0'], /--decode-budget-ms must be a positive integer/]] as const) {
    const r = await runSkd(['serve', '--model', MODEL, '--port', '0', ...FOREIGN, ...flags]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
