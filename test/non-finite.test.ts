/**
 * NaN in, NaN out is refused at every step: export refuses non-finite weights (unless --allow-non-finite),
 * evaluation refuses non-finite features with one line and a non-zero exit, and the server answers a JSON error
 * without storing a classifier.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../data/rng.js';
import { UserError } from '../data/errors.js';
import { datasetNormalization, loadDataset } from '../data/datasets.js';
import { evaluateFewShot } from '../infer/evaluate.js';
import { createServer } from '../infer/server/server.js';
import { initWeights } from '../models/init.js';
import { resnet12Spec } from '../models/spec.js';
import { writeCheckpoint } from '../train/checkpoint.js';
import { FIXTURES, runSkd } from './helpers/run-skd.js';
import { COLOURS, FakeExtractor, rawImage, syntheticImage } from './serve-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'skd-non-finite-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const DATA_ROOT = join(FIXTURES, 'datasets');
const MODEL = join(FIXTURES, 'models', 'resnet12_w8-16-32-64_pytorch.onnx');
const spec = resnet12Spec({ widths: [8, 16, 32, 64], numClasses: 6 });

async function nanCheckpoint(): Promise<string> {
  const weights = initWeights(spec, 7);
  const conv = weights.get('layer1.0.conv1.weight') ?? [...weights.values()][0]!;
  conv.data[3] = NaN;
  conv.data[5] = Infinity;
  const path = join(dir, 'nan.safetensors');
  await writeCheckpoint(path, {
    formatVersion: 1, spec, weights, epoch: 3, step: 10, rng: new Rng(0).getState(), dropBlockCalls: 0,
    config: { dataset: 'CIFAR-FS', dataRoot: DATA_ROOT, imageSize: 32, generation: 0 }, generation: 0, complete: true, history: [],
  });
  return path;
}

test('export refuses weights with NaN or infinities in one line, unless --allow-non-finite; eval then refuses the features', async () => {
  const ckpt = await nanCheckpoint();
  const out = join(dir, 'nan.onnx');
  const refused = await runSkd(['export', '--checkpoint', ckpt, '--out', out]);
  assert.notEqual(refused.code, 0, refused.stderr);
  const lines = refused.stderr.trim().split('\n');
  assert.equal(lines.length, 1, refused.stderr);
  assert.match(lines[0]!, /not finite: \S+ has 2 NaN or infinite values of \d+.*--allow-non-finite/);
  assert.ok(!existsSync(out), 'nothing written');

  const allowed = await runSkd(['export', '--checkpoint', ckpt, '--out', out, '--allow-non-finite']);
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.ok(existsSync(out));

  const evaluated = await runSkd(['eval', '--model', out, '--dataset', 'CIFAR-FS', '--data-root', DATA_ROOT, '--n_ways', '5', '--n_shots', '1', '--n_queries', '5', '--n_test_runs', '3', '--device', 'cpu', '--threads', '1']);
  assert.notEqual(evaluated.code, 0, evaluated.stdout);
  assert.doesNotMatch(evaluated.stdout, /\+-/, 'no accuracy reported');
  const errorLines = evaluated.stderr.trim().split('\n').filter((l) => /non-finite/.test(l));
  assert.equal(errorLines.length, 1, evaluated.stderr);
  assert.match(errorLines[0]!, /non-finite features \(NaN or infinity\) for image \d+ of CIFAR-FS\/test/);
  assert.doesNotMatch(evaluated.stderr, /\n\s+at /, 'no stack trace');
});

test('the evaluator refuses non-finite support features too', async () => {
  const set = await loadDataset({ dataset: 'CIFAR-FS', dataRoot: DATA_ROOT, split: 'test' });
  let calls = 0;
  // Finite for the query pass (the first call), NaN for the support images.
  const extractor = {
    featureDim: 4,
    preprocessing: { size: 32 },
    async extract(_images: Float32Array, count: number) {
      const first = calls++ === 0;
      return new Float32Array(count * 4).fill(first ? 1 : NaN);
    },
  };
  await assert.rejects(
    evaluateFewShot({ extractor, set, nWays: 5, nShots: 1, nQueries: 5, nTestRuns: 2, nAugSupportSamples: 1, seed: 0, head: 'logreg', padding: 4, normalization: datasetNormalization('CIFAR-FS') }),
    (err: unknown) => err instanceof UserError && /non-finite features/.test(err.message),
  );
});

class NanExtractor extends FakeExtractor {
  override async extractPixels(pixels: Uint8Array, count: number): Promise<Float32Array> {
    const out = await super.extractPixels(pixels, count);
    out[out.length - 1] = NaN;
    return out;
  }
}

test('the server answers a JSON error for non-finite features and stores no classifier', async () => {
  const { app } = await createServer({ extractor: new NanExtractor(32), modelPath: MODEL, storeDir: join(dir, 'store') });
  try {
    const image = (k: number) => rawImage(syntheticImage(32, COLOURS[k]!, k), 32, 32);
    const support = [{ label: 'a', image: image(0) }, { label: 'b', image: image(1) }];
    const calls: [string, string, unknown][] = [
      ['POST', '/v1/embed', { images: [image(0), image(1)] }],
      ['POST', '/v1/classify', { support, queries: [image(2)] }],
      ['PUT', '/v1/classifiers/broken', { support }],
    ];
    for (const [method, url, payload] of calls) {
      const res = await app.inject({ method: method as 'POST', url, payload: payload as object });
      assert.equal(res.statusCode, 500, `${method} ${url}: ${res.body}`);
      const body = res.json();
      assert.equal(body.field, 'model');
      assert.match(body.message, /non-finite features \(NaN or infinity\)/);
      assert.doesNotMatch(res.body, /null/);
    }
    assert.equal((await app.inject({ method: 'GET', url: '/v1/classifiers/broken' })).statusCode, 404);
    assert.deepEqual((await app.inject({ method: 'GET', url: '/v1/classifiers' })).json().classifiers, []);
    assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  } finally {
    await app.close();
  }
});
