import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSkd } from './helpers/run-skd.js';

test('skd --help lists every subcommand', async () => {
  const r = await runSkd(['--help']);
  assert.equal(r.code, 0);
  for (const c of ['demo', 'data', 'train', 'export', 'inspect', 'eval', 'serve', 'web']) assert.match(r.stdout, new RegExp(`skd ${c}`));
});

test('an unknown command exits non-zero with one clear line and no stack trace', async () => {
  const r = await runSkd(['frobnicate']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Unknown command/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('output piped to a reader that closes early (| head) ends quietly, without an EPIPE stack trace', async () => {
  const { spawn } = await import('node:child_process');
  const { SKD_BIN } = await import('./helpers/run-skd.js');
  const child = spawn(process.execPath, [SKD_BIN, 'data', 'inspect', 'unused', '--dataset', 'toy'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy(); // the reader is gone before the first line is written
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(stderr, '');
  assert.equal(code, 0);
});

test('eval and serve describe a foreign graph with the same flags, syntax and messages', async () => {
  for (const command of [['eval', '--dataset', 'toy'], ['serve']]) {
    const bad = await runSkd([...command, '--model', 'missing.onnx', '--mean', '0.5,0.5']);
    assert.equal(bad.code, 1, bad.stderr);
    assert.equal(bad.stderr, 'skd: --mean expects 3 numbers such as "0.5,0.5,0.5", got "0.5,0.5"\n');
    const layout = await runSkd([...command, '--model', 'missing.onnx', '--layout', 'chw']);
    assert.equal(layout.stderr, 'skd: --layout must be nchw or nhwc, got "chw"\n');
    // Brackets and spaces are accepted too; the next problem is the missing file.
    const bracketed = await runSkd([...command, '--model', 'missing.onnx', '--mean', '[0.5, 0.5, 0.5]', '--std', '0.25 0.25 0.25']);
    assert.match(bracketed.stderr, /missing\.onnx/);
    const help = (await runSkd([command[0]!, '--help'])).stdout;
    for (const flag of ['--layout', '--size', '--mean', '--std', '--output']) assert.match(help, new RegExp(`${flag} `));
  }
});
