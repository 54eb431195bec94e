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
