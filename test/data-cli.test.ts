import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, runSkd } from './helpers/run-skd.js';

test('skd data inspect on a fixture folder prints every split; --json is machine-readable', async () => {
  const dir = join(FIXTURES, 'datasets', 'CIFAR-FS');
  const text = await runSkd(['data', 'inspect', dir]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /CIFAR-FS \/ train/);
  assert.match(text.stdout, /classes: +6: 3, 11, 29, 40, 57, 70/);
  assert.match(text.stdout, /image size: +32x32x3/);
  const json = await runSkd(['data', 'inspect', dir, '--dataset', 'CIFAR-FS', '--split', 'val', '--json']);
  assert.equal(json.code, 0, json.stderr);
  const doc = JSON.parse(json.stdout);
  assert.equal(doc.splits.length, 1);
  const s = doc.splits[0];
  assert.equal(s.images, 60);
  assert.deepEqual(s.classList.map((c: { originalId: number }) => c.originalId), [1, 5, 99]);
  assert.deepEqual(s.imagesPerClass, { min: 20, max: 20, mean: 20 });
  assert.equal(s.pixelMean.length, 3);
  assert.ok(s.pixelMean.every((m: number) => m > 0.3 && m < 0.7));
});

test('skd data make-toy writes image folders that inspect reads back; refuses a non-empty --out', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-toy-'));
  try {
    const out = join(dir, 'toy');
    const made = await runSkd(['data', 'make-toy', '--out', out, '--images-per-class', '2', '--seed', '3']);
    assert.equal(made.code, 0, made.stderr);
    assert.deepEqual(readdirSync(out).sort(), ['test', 'train', 'val']);
    assert.equal(readdirSync(join(out, 'train')).length, 64);
    assert.deepEqual(readdirSync(dir), ['toy'], 'no staging folder left behind');
    const inspected = await runSkd(['data', 'inspect', out, '--split', 'test', '--image-size', '32', '--json']);
    assert.equal(inspected.code, 0, inspected.stderr);
    const s = JSON.parse(inspected.stdout).splits[0];
    assert.equal(s.classes, 20);
    assert.equal(s.images, 40);
    assert.deepEqual(s.storedImageSize, { min: [32, 32], max: [32, 32] });
    // Folders are resized to 84 unless told otherwise: both sizes are reported.
    const resized = await runSkd(['data', 'inspect', out, '--split', 'test']);
    assert.equal(resized.code, 0, resized.stderr);
    assert.match(resized.stdout, /image size: +84x84x3 \(resized from 32x32 as stored\)/);
    const again = await runSkd(['data', 'make-toy', '--out', out]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists and is not empty/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('skd data: bad input is one line naming the file, non-zero exit, no stack trace', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-bad-'));
  try {
    writeFileSync(join(dir, 'train.pickle'), Buffer.from('\x80\x02}q\x00(X\x04\x00\x00\x00data', 'latin1'));
    const cases: [string[], RegExp][] = [
      [['data', 'inspect', join(dir, 'missing.pickle')], /missing\.pickle not found/],
      [['data', 'inspect', join(dir, 'train.pickle')], /train\.pickle: the pickle is truncated/],
    ];
    for (const [args, pattern] of cases) {
      const r = await runSkd(args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.equal(r.stdout, '');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('skd data --help lists inspect and make-toy', async () => {
  const r = await runSkd(['data', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /skd data inspect <path>/);
  assert.match(r.stdout, /skd data make-toy/);
});

test('make-toy writes as many images per class as the toy set that training and evaluation generate', async () => {
  const { resolveConfig } = await import('../train/config.js');
  const { generateToy, TOY_IMAGES_PER_CLASS } = await import('../data/toy.js');
  const help = await runSkd(['data', 'make-toy', '--help']);
  assert.match(help.stdout, new RegExp(`--images-per-class [^]*?\\[default: ${TOY_IMAGES_PER_CLASS}\\]`));
  assert.equal(resolveConfig(0, { dataset: 'toy', out: 'unused' }).config.imagesPerClass, TOY_IMAGES_PER_CLASS);
  const test = generateToy({ split: 'test' });
  assert.equal(test.count / test.classNames.length, TOY_IMAGES_PER_CLASS);
});
