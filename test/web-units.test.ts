/**
 * Unit tests of the browser demo's DOM-free modules (ONNX metadata reader, preprocessing, classifier). web/src is
 * outside the Node build, so each module is bundled here with esbuild, as the page's build does, and imported.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import * as esbuild from 'esbuild';
import { exportOnnx } from '../export/onnx.js';
import { createHead, type Head } from '../infer/heads/index.js';
import { l2NormalizeRows } from '../infer/features.js';
import { initWeights } from '../models/init.js';
import { resnet12Spec } from '../models/spec.js';

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

type Shape = (number | string | null)[] | null;
interface OnnxInfo { metadata: Record<string, string>; inputs: { name: string; shape: Shape }[]; outputs: { name: string; shape: Shape }[] }
interface Preprocessing { inputName: string; layout: string; imageSize: number; mean: number[]; std: number[]; normalizationInGraph: boolean; featureDim: number | null; arch: string | null; channelOrder: string; outputName: string; assumed: string[] }
interface OnnxInfoModule { readOnnxInfo(bytes: Uint8Array): OnnxInfo }
interface PreprocessingModule {
  resolvePreprocessing(info: OnnxInfo, overrides: Record<string, unknown>): Preprocessing;
  overridesFromParams(params: URLSearchParams): Record<string, unknown>;
  pixelsToInput(rgba: Uint8ClampedArray, p: Preprocessing, out: Float32Array, offset: number): void;
  ModelUnusableError: new (message: string) => Error;
}
interface ModelIdentity { id: string; featureDim: number; arch: string | null }
interface ClassifierState { model: ModelIdentity; classes: { id: string; name: string; pictures: { id: string; thumbnail: string; features: Float32Array }[] }[] }
interface ClassifierModule {
  readiness(state: ClassifierState): { kind: string; message?: string };
  checkClassName(state: ClassifierState, name: string): string;
  fitHead(state: ClassifierState): Head;
  classProbabilities(head: Head, features: Float32Array, dim: number): Float32Array;
  serializeClassifier(state: ClassifierState): string;
  parseClassifier(text: string, model: ModelIdentity, fileName: string): ClassifierState;
  modelFingerprint(bytes: Uint8Array): string;
}

const CIFAR = { mean: [0.5071, 0.4867, 0.4408], std: [0.2675, 0.2565, 0.2761] } as { mean: [number, number, number]; std: [number, number, number] };
const spec = resnet12Spec({ widths: [8, 16, 32, 64], numClasses: 5, imageSize: 32 });
const exported = exportOnnx({ spec, weights: initWeights(spec, 3), outputs: ['features', 'logits'], normalization: CIFAR, layout: 'nhwc', bakeNormalization: true });
const foreign = readFileSync(join(ROOT, 'test', 'fixtures', 'models', 'resnet12_w8-16-32-64_pytorch.onnx'));

test('the page reads metadata_props and graph inputs/outputs from the ONNX bytes', async () => {
  const { readOnnxInfo } = await importWebModule<OnnxInfoModule>('onnx-info');
  const info = readOnnxInfo(exported);
  assert.equal(info.metadata['skd.layout'], 'nhwc');
  assert.equal(info.metadata['skd.image_size'], '32');
  assert.equal(info.metadata['skd.normalization_in_graph'], 'true');
  assert.deepEqual(JSON.parse(info.metadata['skd.mean']), CIFAR.mean);
  assert.deepEqual(info.inputs.map((i) => [i.name, i.shape]), [['images', ['batch', 32, 32, 3]]]);
  assert.deepEqual(info.outputs.map((o) => [o.name, o.shape]), [['features', ['batch', 64]], ['logits', ['batch', 5]]]);

  const torch = readOnnxInfo(foreign);
  assert.deepEqual(torch.metadata, {});
  assert.deepEqual(torch.inputs.map((i) => [i.name, i.shape]), [['images', ['batch', 3, 32, 32]]]);
  assert.deepEqual(torch.outputs.map((o) => o.name), ['features', 'logits', 'rot_logits']);

  assert.throws(() => readOnnxInfo(new TextEncoder().encode('{"not": "onnx"}')));
  assert.throws(() => readOnnxInfo(exported.subarray(0, exported.length - 1000)), /truncated/);
});

test('preprocessing comes from metadata, else from overrides and the input shape with the assumptions listed', async () => {
  const { readOnnxInfo } = await importWebModule<OnnxInfoModule>('onnx-info');
  const { resolvePreprocessing, overridesFromParams, ModelUnusableError } = await importWebModule<PreprocessingModule>('preprocessing');
  const own = resolvePreprocessing(readOnnxInfo(exported), {});
  assert.deepEqual(
    [own.inputName, own.outputName, own.layout, own.imageSize, own.normalizationInGraph, own.featureDim, own.arch, own.assumed],
    ['images', 'features', 'nhwc', 32, true, 64, 'resnet12', []],
  );

  const torchInfo = readOnnxInfo(foreign);
  const guessed = resolvePreprocessing(torchInfo, {});
  assert.deepEqual([guessed.layout, guessed.imageSize, guessed.mean, guessed.normalizationInGraph], ['nchw', 32, CIFAR.mean, false]);
  assert.equal(guessed.assumed.length, 4);
  const described = resolvePreprocessing(torchInfo, overridesFromParams(new URLSearchParams('layout=nchw&size=32&mean=0.5,0.5,0.5&std=[0.25,0.25,0.25]')));
  assert.deepEqual([described.mean, described.std, described.assumed], [[0.5, 0.5, 0.5], [0.25, 0.25, 0.25], []]);

  assert.throws(() => overridesFromParams(new URLSearchParams('layout=chw')), /layout should be nchw or nhwc/);
  assert.throws(() => overridesFromParams(new URLSearchParams('mean=1,2')), /mean should be three numbers/);
  assert.throws(() => overridesFromParams(new URLSearchParams('size=-3')), /image size should be a whole number/);
  const noFeatures = { ...torchInfo, outputs: torchInfo.outputs.filter((o) => o.name !== 'features') };
  assert.throws(() => resolvePreprocessing(noFeatures, {}), (err: unknown) => err instanceof ModelUnusableError && /no "features" output \(its outputs: logits, rot_logits\)/.test((err as Error).message));
});

test('pixels become the input tensor in either layout, normalised unless the graph does it', async () => {
  const { readOnnxInfo } = await importWebModule<OnnxInfoModule>('onnx-info');
  const { resolvePreprocessing, pixelsToInput } = await importWebModule<PreprocessingModule>('preprocessing');
  const base = resolvePreprocessing(readOnnxInfo(foreign), {});
  const p = { ...base, imageSize: 2 };
  // 2x2 RGBA: pixel i has R = 10 i, G = 100, B = 255, alpha ignored.
  const rgba = new Uint8ClampedArray([0, 100, 255, 9, 10, 100, 255, 9, 20, 100, 255, 9, 30, 100, 255, 9]);
  const nchw = new Float32Array(13);
  pixelsToInput(rgba, p, nchw, 1);
  assert.equal(nchw[0], 0);
  assert.ok(Math.abs(nchw[1 + 2] - (20 / 255 - CIFAR.mean[0]) / CIFAR.std[0]) < 1e-6, 'R plane, pixel 2');
  assert.ok(Math.abs(nchw[1 + 4] - (100 / 255 - CIFAR.mean[1]) / CIFAR.std[1]) < 1e-6, 'G plane first');
  const nhwc = new Float32Array(12);
  pixelsToInput(rgba, { ...p, layout: 'nhwc', normalizationInGraph: true }, nhwc, 0);
  assert.deepEqual(Array.from(nhwc.subarray(3, 6)), [10 / 255, 100 / 255, 1].map(Math.fround));
});

test('the classifier fits the evaluator\'s logistic-regression head and round-trips through its file format', async () => {
  const c = await importWebModule<ClassifierModule>('classifier');
  const model: ModelIdentity = { id: c.modelFingerprint(exported), featureDim: 3, arch: 'resnet12' };
  assert.notEqual(c.modelFingerprint(exported), c.modelFingerprint(foreign));
  const state: ClassifierState = { model, classes: [] };
  assert.equal(c.readiness(state).kind, 'no-classes');
  state.classes.push({ id: 'a', name: 'cats', pictures: [] });
  assert.equal(c.readiness(state).kind, 'too-few');
  assert.throws(() => c.checkClassName(state, '  Cats '), /already a class named “Cats”/);
  assert.throws(() => c.checkClassName(state, '   '), /Give the class a name/);
  state.classes.push({ id: 'b', name: c.checkClassName(state, ' dogs '), pictures: [] });
  const rows = [[1, 0.1, 0], [0.9, 0, 0.2], [0, 1, 0.1], [0.1, 0.8, 0]];
  rows.forEach((r, i) => state.classes[i < 2 ? 0 : 1].pictures.push({ id: `p${i}`, thumbnail: 'data:image/jpeg;base64,AA==', features: Float32Array.from(r) }));
  assert.match(String(c.readiness({ model, classes: [state.classes[0]] }).message), /at least 2 classes/);
  assert.equal(c.readiness(state).kind, 'ready');

  const query = Float32Array.from([0.7, 0.2, 0.1]);
  const probabilities = c.classProbabilities(c.fitHead(state), query, 3);
  // The same head fitted directly, as the evaluator does: L2-normalised rows, C = 1.
  const x = Float32Array.from(rows.flat());
  l2NormalizeRows(x, 4, 3);
  const direct = createHead('logreg', { C: 1 });
  direct.fit(x, 4, 3, Int32Array.from([0, 0, 1, 1]), 2);
  const q = Float32Array.from(query);
  l2NormalizeRows(q, 1, 3);
  assert.deepEqual(Array.from(probabilities), Array.from(direct.predictProba(q, 1)));
  assert.ok(probabilities[0] > 0.5);

  const text = c.serializeClassifier(state);
  const back = c.parseClassifier(text, model, 'saved.json');
  assert.deepEqual(back.classes.map((k) => [k.name, k.pictures.map((p) => Array.from(p.features))]), state.classes.map((k) => [k.name, k.pictures.map((p) => Array.from(p.features))]));
  assert.throws(() => c.parseClassifier(text, { ...model, id: 'other' }, 'saved.json'), /“saved\.json” was made with another model/);
  assert.throws(() => c.parseClassifier('{', model, 'x.json'), /not a saved classifier \(it is not JSON\)/);
  assert.throws(() => c.parseClassifier('{"format": "other"}', model, 'x.json'), /expected "format": "skd-web-classifier"/);
  const broken = JSON.parse(text) as { classes: { pictures: { features: unknown[] }[] }[] };
  broken.classes[1].pictures[0].features = [1, 2];
  assert.throws(() => c.parseClassifier(JSON.stringify(broken), model, 'x.json'), /picture 1 of “dogs” does not have 3 feature values/);
});
