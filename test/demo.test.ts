import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSkd } from './helpers/run-skd.js';
import type { DemoReport } from '../demo/report.js';

test('skd demo --size tiny runs every stage and leaves every artefact', { timeout: 240_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'skd-demo-'));
  try {
    const r = await runSkd(['demo', '--size', 'tiny', '--out', out, '--backend', 'wasm'], { timeoutMs: 230_000 });
    assert.equal(r.code, 0, r.stderr);
    // The table, then the next commands with the paths filled in.
    assert.match(r.stdout, /SKD Gen-0/);
    assert.match(r.stdout, /SKD Gen-1/);
    assert.match(r.stdout, /untrained/);
    // Started as `node dist/bin/skd.js`, the demo names the command that way (`skd` when started through a link).
    for (const command of ['eval', 'serve', 'web']) assert.match(r.stdout, new RegExp(`\\n +node \\S*skd\\.js ${command} --model ${out}/gen1\\.onnx`), r.stdout);

    for (const f of ['gen0.onnx', 'gen1.onnx', 'untrained.onnx', 'report.json', 'report.md', 'curves.svg', 'train/gen0.safetensors', 'train/gen1.safetensors', 'train/log.jsonl']) {
      assert.ok(existsSync(join(out, f)), `${f} missing`);
      assert.ok(statSync(join(out, f)).size > 0, `${f} empty`);
    }
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as DemoReport;
    assert.equal(report.training.length, 2);
    assert.deepEqual(report.evaluation.map((e) => e.model).sort(), ['gen0', 'gen1', 'untrained']);
    for (const e of report.evaluation) {
      assert.ok(e.mean >= 0 && e.mean <= 100, `accuracy ${e.mean}`);
      assert.ok(e.halfWidth >= 0);
      assert.equal(e.episodes, 10);
    }
    for (const c of report.exportCheck) assert.ok(c.maxRelDiff <= 1e-4, `${c.model} export differs by ${c.maxRelDiff}`);
    assert.ok(report.findings.length > 0);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    assert.match(md, /\| SKD Gen-1 \|/);
    assert.match(readFileSync(join(out, 'curves.svg'), 'utf8'), /^<svg[^>]+xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    const log = readFileSync(join(out, 'train/log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { generation: number });
    assert.deepEqual([...new Set(log.map((l) => l.generation))].sort(), [0, 1]);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('skd demo --json keeps stdout machine-readable', { timeout: 240_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'skd-demo-'));
  try {
    const r = await runSkd(['demo', '--size', 'tiny', '--out', out, '--backend', 'wasm', '--json'], { timeoutMs: 230_000 });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as DemoReport;
    assert.equal(report.tool, 'skd');
    assert.equal(report.evaluation.length, 3);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
