/** `skd web`: the static server behind the browser demo (headers, model, paths) and its command line. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { resolveModelPath, startWebServer, WEB_DIST, type WebServer } from '../bin/commands/web.js';
import { UserError } from '../data/errors.js';
import { runSkd, SKD_BIN } from './helpers/run-skd.js';

let work: string;
let server: WebServer;
const modelBytes = Buffer.from('not really a model, but the server does not look inside');

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'skd-web-server-'));
  writeFileSync(join(work, 'model.onnx'), modelBytes);
  server = await startWebServer({ modelPath: join(work, 'model.onnx'), port: 0 });
});

after(async () => {
  await server?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A raw GET (fetch would normalise paths such as /../). */
function get(url: string, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url);
    const req = request({ hostname, port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the page is served with cross-origin isolation headers and the right content types', async () => {
  const page = await get(server.url, '/');
  assert.equal(page.status, 200);
  assert.equal(page.headers['cross-origin-opener-policy'], 'same-origin');
  assert.equal(page.headers['cross-origin-embedder-policy'], 'require-corp');
  assert.equal(page.headers['cross-origin-resource-policy'], 'same-origin');
  assert.match(String(page.headers['content-type']), /^text\/html/);
  assert.equal(page.body.toString(), readFileSync(join(WEB_DIST, 'index.html'), 'utf8'));

  const runtime = await get(server.url, '/ort/ort-wasm-simd-threaded.wasm', 'HEAD');
  assert.equal(runtime.status, 200);
  assert.equal(runtime.headers['content-type'], 'application/wasm');
  assert.ok(Number(runtime.headers['content-length']) > 1e6);
  const script = await get(server.url, '/app.js', 'HEAD');
  assert.match(String(script.headers['content-type']), /^(text|application)\/javascript/);
  assert.equal(script.headers['x-content-type-options'], 'nosniff');
});

test('the model is served at /model.onnx, and revalidation answers 304', async () => {
  const first = await get(server.url, '/model.onnx');
  assert.equal(first.status, 200);
  assert.deepEqual(first.body, modelBytes);
  assert.equal(first.headers['cross-origin-embedder-policy'], 'require-corp');
  const etag = String(first.headers.etag);
  const again = await get(server.url, '/model.onnx', 'GET', { 'If-None-Match': etag });
  assert.equal(again.status, 304);
  assert.equal(again.body.length, 0);
});

test('paths outside the page, unknown files and other methods are refused', async () => {
  for (const path of ['/../package.json', '/%2e%2e/package.json', '/..%2fpackage.json', '/nothing-here.js', '/%00']) {
    const r = await get(server.url, path);
    assert.ok(r.status === 403 || r.status === 404, `${path}: ${r.status}`);
    assert.doesNotMatch(r.body.toString(), /"name": "skd"/);
  }
  const post = await get(server.url, '/', 'POST');
  assert.ok(post.status >= 400 && post.status < 500, `POST /: ${post.status}`);
  // skd web is skd serve's app without the API: no classifier routes.
  assert.equal((await get(server.url, '/v1/classifiers')).status, 404);
});

test('skd web and skd serve send the same isolation headers (one app)', async () => {
  const { ISOLATION_HEADERS } = await import('../infer/server/app.js');
  const page = await get(server.url, '/');
  for (const [k, v] of Object.entries(ISOLATION_HEADERS)) assert.equal(page.headers[k], v, k);
  assert.equal((await get(server.url, '/nothing-here.js')).headers['cross-origin-embedder-policy'], 'require-corp');
});

test('without a model /model.onnx is a 404 the page understands', async () => {
  const bare = await startWebServer({ modelPath: null, port: 0 });
  try {
    const r = await get(bare.url, '/model.onnx');
    assert.equal(r.status, 404);
    assert.match(r.body.toString(), /no model is served/);
  } finally {
    await bare.close();
  }
});

test('the default model is the demo output gen1, then gen0; a missing --model is a user error', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'skd-web-default-'));
  try {
    assert.equal(resolveModelPath(undefined, cwd), null);
    mkdirSync(join(cwd, 'skd-demo'));
    writeFileSync(join(cwd, 'skd-demo', 'gen0.onnx'), 'x');
    assert.equal(resolveModelPath(undefined, cwd), join(cwd, 'skd-demo', 'gen0.onnx'));
    writeFileSync(join(cwd, 'skd-demo', 'gen1.onnx'), 'x');
    assert.equal(resolveModelPath(undefined, cwd), join(cwd, 'skd-demo', 'gen1.onnx'));
    assert.throws(() => resolveModelPath('missing.onnx', cwd), (err: unknown) => err instanceof UserError && /--model missing\.onnx: no such file/.test(err.message));
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test('skd web with a missing model file exits with one clear line', async () => {
  const r = await runSkd(['web', '--model', join(work, 'absent.onnx'), '--port', '0']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--model .*absent\.onnx: no such file \(expected an exported \.onnx model\)/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('skd web prints the address on stdout and serves the page until stopped', async () => {
  const child = spawn(process.execPath, [SKD_BIN, 'web', '--model', join(work, 'model.onnx'), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const match = /^(http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(out);
        if (match) resolve(match[1]);
      });
      child.on('exit', (code) => reject(new Error(`skd web exited with ${code}`)));
      setTimeout(() => reject(new Error('skd web printed no address in 20 s')), 20_000).unref();
    });
    const model = await get(url, '/model.onnx');
    assert.deepEqual(model.body, modelBytes);
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
});
