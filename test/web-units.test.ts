/**
 * Unit tests of the browser demo's DOM-free modules (preprocessing, classifier) and of the modules it shares with
 * Node. web/src is its own TypeScript project (web/tsconfig.json, referenced by the root one), so its types come
 * from there; its code is bundled here with esbuild, as the page's build does, and imported.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import * as esbuild from 'esbuild';
import { augmentSupportPixels, normalizePixels } from '../data/augment.js';
import { Rng } from '../data/rng.js';
import { exportOnnx } from '../export/onnx.js';
import { validateRecord } from '../infer/classifier-record.js';
import { createHead } from '../infer/heads/index.js';
import { l2NormalizeRows } from '../infer/features.js';
import { readOnnxInfo } from '../infer/onnx-metadata.js';
import { nhwcToNchw } from '../infer/layout.js';
import { FeatureExtractor } from '../infer/session.js';
import { FolderStore } from '../infer/server/store.js';
import { sha256Hex } from '../infer/sha256.js';
import { initWeights } from '../models/init.js';
import type { PreprocessingFlags } from '../models/preprocessing.js';
import { resnet12Spec } from '../models/spec.js';
import { rename, withMetadata } from './helpers/onnx-bytes.js';
import type { ClassifierState, ModelIdentity } from '../web/src/classifier.js';

type PreprocessingModule = typeof import('../web/src/preprocessing.js');
type ClassifierModule = typeof import('../web/src/classifier.js');

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}
const ROOT = packageRoot();

/** Bundles web/src/<name>.ts (with what it imports) and imports the result. */
async function importWebModule<T>(name: string): Promise<T> {
  const result = await esbuild.build({
    entryPoints: [join(ROOT, 'web', 'src', `${name}.ts`)], bundle: true, write: false, format: 'esm', platform: 'neutral', logLevel: 'silent',
  });
  const code = result.outputFiles[0].text;
  return (await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)) as T;
}

const CIFAR = { mean: [0.5071, 0.4867, 0.4408], std: [0.2675, 0.2565, 0.2761] } as { mean: [number, number, number]; std: [number, number, number] };
const spec = resnet12Spec({ widths: [8, 16, 32, 64], numClasses: 5, imageSize: 32 });
const exported = exportOnnx({ spec, weights: initWeights(spec, 3), outputs: ['features', 'logits'], normalization: CIFAR, layout: 'nhwc', bakeNormalization: true });
const plain = exportOnnx({ spec, weights: initWeights(spec, 3), outputs: ['features', 'logits'], normalization: CIFAR });
const foreign = readFileSync(join(ROOT, 'test', 'fixtures', 'models', 'resnet12_w8-16-32-64_pytorch.onnx'));
const work = mkdtempSync(join(tmpdir(), 'skd-web-units-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('the metadata reader reads metadata_props, inputs (initializers left out), outputs and element types', () => {
  const info = readOnnxInfo(exported);
  assert.equal(info.metadata['skd.layout'], 'nhwc');
  assert.equal(info.metadata['skd.image_size'], '32');
  assert.equal(info.metadata['skd.normalization_in_graph'], 'true');
  assert.deepEqual(JSON.parse(info.metadata['skd.mean']!), CIFAR.mean);
  assert.deepEqual(info.inputs.map((i) => [i.name, i.shape, i.elemType]), [['images', ['batch', 32, 32, 3], 1]]);
  assert.deepEqual(info.outputs.map((o) => [o.name, o.shape]), [['features', ['batch', 64]], ['logits', ['batch', 5]]]);

  const torch = readOnnxInfo(foreign);
  assert.deepEqual(torch.metadata, {});
  assert.deepEqual(torch.inputs.map((i) => [i.name, i.shape]), [['images', ['batch', 3, 32, 32]]]);
  assert.deepEqual(torch.outputs.map((o) => o.name), ['features', 'logits', 'rot_logits']);

  assert.throws(() => readOnnxInfo(new TextEncoder().encode('{"not": "onnx"}')));
  assert.throws(() => readOnnxInfo(exported.subarray(0, exported.length - 1000)), /truncated/);
});

/** Each case: a model (bytes), the flags, and what both sides must answer: a preprocessing or the same refusal. */
const FOREIGN_FLAGS: PreprocessingFlags = { mean: CIFAR.mean, std: CIFAR.std };
const TABLE: { name: string; bytes: Uint8Array; flags?: PreprocessingFlags; error?: RegExp; expect?: Partial<Record<string, unknown>> }[] = [
  { name: 'exported', bytes: plain, expect: { layout: 'nchw', size: 32, normalizationInGraph: false, outputName: 'features', mean: CIFAR.mean } },
  { name: 'exported-baked', bytes: exported, expect: { layout: 'nhwc', size: 32, normalizationInGraph: true } },
  { name: 'no-metadata', bytes: foreign, error: /no-metadata: no normalisation in the metadata \(skd\.mean, skd\.std\); pass --mean and --std/ },
  { name: 'no-metadata-described', bytes: foreign, flags: FOREIGN_FLAGS, expect: { layout: 'nchw', size: 32, mean: CIFAR.mean } },
  { name: 'bgr', bytes: withMetadata(plain, { ...readOnnxInfo(plain).metadata, 'skd.channel_order': 'bgr' }), error: /skd\.channel_order = 'bgr' is not supported \(expected rgb\)/ },
  { name: 'bad-layout', bytes: withMetadata(plain, { ...readOnnxInfo(plain).metadata, 'skd.layout': 'chw' }), error: /skd\.layout = 'chw', expected nchw or nhwc/ },
  { name: 'wrong-size', bytes: withMetadata(plain, { ...readOnnxInfo(plain).metadata, 'skd.image_size': '84' }), error: /has shape \[batch, 3, 32, 32\] but the image size is 84/ },
  { name: 'bad-mean', bytes: withMetadata(plain, { ...readOnnxInfo(plain).metadata, 'skd.mean': '[1,2]' }), error: /metadata skd\.mean = \[1,2\]: must be three numbers/ },
  { name: 'zero-std', bytes: withMetadata(plain, { ...readOnnxInfo(plain).metadata, 'skd.std': '[0,1,1]' }), error: /metadata skd\.std = \[0,1,1\]: must be positive/ },
  { name: 'value-range-only', bytes: withMetadata(foreign, { 'skd.value_range': '0-1' }), expect: { normalizationInGraph: true, mean: [0, 0, 0] } },
  { name: 'flag-wins', bytes: plain, flags: { mean: [0.5, 0.5, 0.5] }, expect: { mean: [0.5, 0.5, 0.5], std: CIFAR.std } },
  { name: 'no-features', bytes: rename(plain, 'features', 'embedded'), error: /has no output 'features'; its outputs are: embedded, logits \(choose one with --output\)/ },
  { name: 'chosen-output', bytes: rename(plain, 'features', 'embedded'), flags: { outputName: 'embedded' }, expect: { outputName: 'embedded' } },
  {
    name: 'only-output', bytes: rename(exportOnnx({ spec, weights: initWeights(spec, 3), normalization: CIFAR }), 'features', 'embedded'),
    expect: { outputName: 'embedded' },
  },
];

test('the page and Node resolve the same preprocessing, and refuse the same graphs with the same message', async () => {
  const page = await importWebModule<PreprocessingModule>('preprocessing');
  for (const c of TABLE) {
    const path = join(work, c.name);
    writeFileSync(path, c.bytes);
    let nodeResult: unknown, pageResult: unknown;
    try {
      const fx = await FeatureExtractor.open(path, { device: 'cpu', threads: 1, overrides: c.flags });
      nodeResult = fx.preprocessing;
      await fx.close();
    } catch (err) {
      nodeResult = { error: (err as Error).message, kind: (err as Error).name };
    }
    try {
      pageResult = page.resolveForPage(path, readOnnxInfo(c.bytes), c.flags ?? {}).preprocessing;
    } catch (err) {
      assert.ok(err instanceof page.ModelUnusableError, `${c.name}: the page shows a refusal as its own message, got ${String(err)}`);
      pageResult = { error: (err as Error).message, kind: 'UserError' };
    }
    assert.deepEqual(pageResult, nodeResult, c.name);
    if (c.error) assert.match((nodeResult as { error: string }).error, c.error, c.name);
    else for (const [k, v] of Object.entries(c.expect ?? {})) assert.deepEqual((nodeResult as Record<string, unknown>)[k], v, `${c.name}: ${k}`);
  }
});

test('the page reads its URL parameters under the command-line flags\' names', async () => {
  const { overridesFromParams } = await importWebModule<PreprocessingModule>('preprocessing');
  assert.deepEqual(
    overridesFromParams(new URLSearchParams('layout=nchw&size=32&mean=0.5,0.5,0.5&std=[0.25,0.25,0.25]&output=embedding&inGraph=false')),
    { layout: 'nchw', size: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], normalizationInGraph: false, outputName: 'embedding' },
  );
  assert.throws(() => overridesFromParams(new URLSearchParams('layout=chw')), /layout should be nchw or nhwc/);
  assert.throws(() => overridesFromParams(new URLSearchParams('mean=1,2')), /mean should be three numbers/);
  assert.throws(() => overridesFromParams(new URLSearchParams('size=-3')), /image size should be a whole number/);
  assert.throws(() => overridesFromParams(new URLSearchParams('std=1,0,1')), /std must be positive/);
});

test('the page feeds exactly the values Node feeds: one normalisation (float32 mean/std), either layout', async () => {
  const { resolveForPage, pixelsToInput } = await importWebModule<PreprocessingModule>('preprocessing');
  const size = 4;
  const rgb = Uint8Array.from({ length: size * size * 3 }, (_, i) => (i * 37) % 256);
  const rgba = new Uint8ClampedArray(size * size * 4);
  for (let i = 0; i < size * size; i++) rgba.set([rgb[3 * i]!, rgb[3 * i + 1]!, rgb[3 * i + 2]!, 9], 4 * i);
  const p = { ...resolveForPage('m', readOnnxInfo(plain), {}).preprocessing, size };
  const nodeNhwc = normalizePixels(rgb, 1, p);
  const nodeNchw = new Float32Array(nodeNhwc.length);
  nhwcToNchw(nodeNhwc, nodeNchw, 1, size, size, 3);
  const nchw = new Float32Array(1 + nodeNchw.length);
  pixelsToInput(rgba, p, nchw, 1);
  assert.equal(nchw[0], 0);
  assert.deepEqual(nchw.subarray(1), nodeNchw);
  const nhwc = new Float32Array(nodeNhwc.length);
  pixelsToInput(rgba, { ...p, layout: 'nhwc' }, nhwc, 0);
  assert.deepEqual(nhwc, nodeNhwc);
  // mean and std are rounded to float32 before use (as torchvision computes on float32 tensors).
  const v = Math.fround(rgb[0]! / 255);
  assert.equal(nhwc[0], Math.fround((v - Math.fround(CIFAR.mean[0])) / Math.fround(CIFAR.std[0])));
  const baked = new Float32Array(nodeNhwc.length);
  pixelsToInput(rgba, { ...p, layout: 'nhwc', normalizationInGraph: true }, baked, 0);
  assert.deepEqual(Array.from(baked.subarray(0, 3)), Array.from(rgb.subarray(0, 3), (x) => Math.fround(x / 255)));
});

test('SHA-256 of the page agrees with node:crypto (the model identity both sides record)', () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000]) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 131 + 7) % 256);
    assert.equal(sha256Hex(bytes), createHash('sha256').update(bytes).digest('hex'), `${n} bytes`);
  }
  assert.equal(sha256Hex(exported), createHash('sha256').update(exported).digest('hex'));
});

function readyState(c: ClassifierModule, model: ModelIdentity): ClassifierState {
  const state: ClassifierState = { model, name: c.DEFAULT_CLASSIFIER_NAME, augment: 0, classes: [], importedHead: null };
  state.classes.push({ id: 'a', name: 'cats', pictures: [] }, { id: 'b', name: 'dogs', pictures: [] });
  const rows = [[1, 0.1, 0], [0.9, 0, 0.2], [0, 1, 0.1], [0.1, 0.8, 0]];
  rows.forEach((r, i) => state.classes[i < 2 ? 0 : 1]!.pictures.push({ id: `p${i}`, thumbnail: 'data:image/jpeg;base64,AA==', features: Float32Array.from(r) }));
  return state;
}

test('the classifier fits the evaluator\'s logistic-regression head and round-trips through the record format', async () => {
  const c = await importWebModule<ClassifierModule>('classifier');
  const model: ModelIdentity = { sha256: sha256Hex(exported), featureDim: 3, arch: 'resnet12' };
  const empty: ClassifierState = { model, name: 'classifier', augment: 0, classes: [], importedHead: null };
  assert.equal(c.readiness(empty).kind, 'no-classes');
  empty.classes.push({ id: 'a', name: 'cats', pictures: [] });
  assert.equal(c.readiness(empty).kind, 'too-few');
  assert.throws(() => c.checkClassName(empty, '  Cats '), /already a class named “Cats”/);
  assert.throws(() => c.checkClassName(empty, '   '), /Give the class a name/);
  const state = readyState(c, model);
  assert.match(String((c.readiness({ ...state, classes: [state.classes[0]!] }) as { message?: string }).message), /at least 2 classes/);
  assert.equal(c.readiness(state).kind, 'ready');

  const query = Float32Array.from([0.7, 0.2, 0.1]);
  const probabilities = c.classProbabilities(c.fitHead(state), query, 3);
  // The same head fitted directly, as the evaluator does: L2-normalised rows, C = 1.
  const x = Float32Array.from(state.classes.flatMap((k) => k.pictures.flatMap((p) => Array.from(p.features))));
  l2NormalizeRows(x, 4, 3);
  const direct = createHead('logreg', { C: 1 });
  direct.fit(x, 4, 3, Int32Array.from([0, 0, 1, 1]), 2);
  const q = Float32Array.from(query);
  l2NormalizeRows(q, 1, 3);
  assert.deepEqual(Array.from(probabilities), Array.from(direct.predictProba(q, 1)));
  assert.ok(probabilities[0]! > 0.5);

  const text = c.serializeClassifier(state);
  const record = validateRecord(JSON.parse(text));
  assert.deepEqual([record.format, record.labels, record.headKind, record.modelSha256, record.supportImages], ['skd-classifier', ['cats', 'dogs'], 'logreg', model.sha256, 4]);
  const back = c.parseClassifier(text, model, 'saved.json');
  assert.deepEqual(back.classes.map((k) => [k.name, k.pictures.map((p) => Array.from(p.features))]), state.classes.map((k) => [k.name, k.pictures.map((p) => Array.from(p.features))]));
  assert.equal(back.importedHead, null);
  assert.throws(() => c.parseClassifier(text, { ...model, sha256: '0'.repeat(64) }, 'saved.json'), /“saved\.json” was made with another model/);
  assert.throws(() => c.parseClassifier('{', model, 'x.json'), /not a saved classifier \(it is not JSON\)/);
  assert.throws(() => c.parseClassifier('{"format": "other"}', model, 'x.json'), /“x\.json” is not a usable classifier: format: must be "skd-classifier"/);
  const broken = JSON.parse(text) as { support: { features: unknown[] }[] };
  broken.support[3]!.features = [1, 2];
  assert.throws(() => c.parseClassifier(JSON.stringify(broken), model, 'x.json'), /support\[3\]\.features: must be 3 finite numbers/);
});

test('a classifier saved by the page loads in skd serve\'s store, and a server record (no pictures) loads in the page', async () => {
  const c = await importWebModule<ClassifierModule>('classifier');
  const model: ModelIdentity = { sha256: sha256Hex(exported), featureDim: 3, arch: 'resnet12' };
  const state = readyState(c, model);
  const dir = mkdtempSync(join(work, 'store-'));
  writeFileSync(join(dir, 'classifier.json'), c.serializeClassifier(state));
  const store = await FolderStore.open(dir);
  assert.deepEqual(store.skipped, []);
  const stored = (await store.get('classifier'))!.classifier;
  assert.deepEqual(stored.labels, ['cats', 'dogs']);

  // A record as skd serve writes it: a fitted head, no support pictures.
  const { support: _support, ...serverRecord } = stored;
  const loaded = c.parseClassifier(JSON.stringify(serverRecord), model, 'pets.json');
  assert.equal(c.readiness(loaded).kind, 'ready');
  assert.deepEqual(loaded.classes.map((k) => [k.name, k.pictures.length]), [['cats', 0], ['dogs', 0]]);
  const query = Float32Array.from([0.7, 0.2, 0.1]);
  assert.deepEqual(c.classProbabilities(c.fitHead(loaded), query, 3), c.classProbabilities(c.fitHead(state), query, 3));
  // Saved again from the page, it is still a valid record (without pictures, with the imported head).
  const resaved = validateRecord(JSON.parse(c.serializeClassifier(loaded)));
  assert.equal(resaved.support, undefined);
  const again = c.parseClassifier(JSON.stringify(resaved), model, 'again.json');
  assert.deepEqual(c.classProbabilities(c.fitHead(again), query, 3), c.classProbabilities(c.fitHead(state), query, 3));
});

test('the page augments a support picture into the copies skd serve makes (data/augment.ts, seed 0), and records keep every row', async () => {
  const page = await importWebModule<PreprocessingModule>('preprocessing');
  const size = 48;
  const rgb = Uint8Array.from({ length: size * size * 3 }, (_, i) => (i * 53 + (i >> 7)) % 256);
  const rgba = new Uint8ClampedArray(size * size * 4);
  for (let i = 0; i < size * size; i++) rgba.set([rgb[3 * i]!, rgb[3 * i + 1]!, rgb[3 * i + 2]!, 255], 4 * i);
  const copies = page.augmentedCopies(rgba, size, 3);
  const served = augmentSupportPixels(rgb, 1, size, 3, new Rng(0));
  copies.forEach((copy, k) => {
    for (let i = 0; i < size * size; i++) {
      assert.deepEqual(Array.from(copy.subarray(4 * i, 4 * i + 3)), Array.from(served.subarray((k * size * size + i) * 3, (k * size * size + i) * 3 + 3)), `copy ${k}, pixel ${i}`);
    }
  });
  assert.equal(page.augmentFromParams(new URLSearchParams('augment=5')), 5);
  assert.equal(page.augmentFromParams(new URLSearchParams('')), 0);
  assert.throws(() => page.augmentFromParams(new URLSearchParams('augment=-1')), /augment should be a whole number from 0 to 32/);

  const c = await importWebModule<ClassifierModule>('classifier');
  const model: ModelIdentity = { sha256: sha256Hex(exported), featureDim: 3, arch: 'resnet12' };
  const state = readyState(c, model);
  state.augment = 2;
  for (const k of state.classes) for (const p of k.pictures) p.features = Float32Array.from([...p.features, ...p.features.map((v) => v * 0.9)]);
  const record = validateRecord(JSON.parse(c.serializeClassifier(state)));
  assert.deepEqual([record.augment, record.supportImages, record.support![0]!.features.length], [2, 8, 6]);
  const back = c.parseClassifier(JSON.stringify(record), model, 'aug.json');
  assert.equal(back.augment, 2);
  assert.deepEqual(c.classProbabilities(c.fitHead(back), Float32Array.from([0.7, 0.2, 0.1]), 3), c.classProbabilities(c.fitHead(state), Float32Array.from([0.7, 0.2, 0.1]), 3));
  assert.throws(() => validateRecord({ ...record, augment: 3 }), /support\[0\]\.features: must be 9 finite numbers/);
});
