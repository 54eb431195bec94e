/** `skd train --conv`: which 3x3 convolutions the ONNX Runtime engine runs, said in its engine line. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readCheckpoint } from '../train/checkpoint.js';
import { FIXTURES, runSkd } from './helpers/run-skd.js';

const TINY = ['--dataset', 'CIFAR-FS', '--data-root', join(FIXTURES, 'datasets'), '--widths', '4,8,8,8', '--batch_size', '32', '--epochs', '1',
  '--max-steps-per-epoch', '2', '--val-every', '0', '--threads', '1'];

test('skd train runs Winograd convolutions by default and direct ones with --conv direct, saying which', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-conv-'));
  try {
    const losses: number[] = [];
    for (const [conv, said] of [[undefined, 'Winograd'], ['direct', 'direct']] as const) {
      const out = join(dir, conv ?? 'default');
      const r = await runSkd(['train', 'gen0', ...TINY, '--out', out, ...(conv ? ['--conv', conv] : [])], { timeoutMs: 300_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`engine: ONNX Runtime \\(CPU execution provider, ${said} convolutions\\)`));
      losses.push((await readCheckpoint(join(out, 'gen0.safetensors'))).history[0].loss);
    }
    // Two steps of the same run, computed two ways: the same loss up to rounding.
    assert.ok(Math.abs(losses[0] - losses[1]) < 1e-3 * Math.abs(losses[1]), `${losses[0]} vs ${losses[1]}`);
    const bad = await runSkd(['train', 'gen0', ...TINY, '--out', join(dir, 'bad'), '--conv', 'fft']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /Argument: conv, Given: "fft", Choices: "winograd", "direct"/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
