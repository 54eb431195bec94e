import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from './helpers/run-skd.js';
import { meanConfidenceInterval, studentTQuantile } from '../infer/stats.js';

interface CiCase { accuracies: number[]; mean_percent: number; ci95_percent: number; t_quantile: number }

test('mean and 95% half-width match the reference within 1e-9', () => {
  const { cases } = JSON.parse(readFileSync(join(FIXTURES, 'eval', 'confidence_interval.json'), 'utf8')) as { cases: CiCase[] };
  assert.ok(cases.length >= 4);
  for (const c of cases) {
    const r = meanConfidenceInterval(c.accuracies.map((a) => 100 * a));
    assert.equal(r.n, c.accuracies.length);
    assert.ok(Math.abs(r.mean - c.mean_percent) <= 1e-9, `mean ${r.mean} vs ${c.mean_percent}`);
    assert.ok(Math.abs(r.halfWidth - c.ci95_percent) <= 1e-9, `half-width ${r.halfWidth} vs ${c.ci95_percent} (n=${r.n})`);
    assert.ok(Math.abs(studentTQuantile(0.975, c.accuracies.length - 1) - c.t_quantile) <= 1e-12);
  }
});

test('t quantiles agree with tabulated values', () => {
  // scipy.stats.t.ppf values.
  const table: [number, number, number][] = [
    [0.975, 1, 12.706204736174696], [0.975, 2, 4.302652729749464], [0.975, 3, 3.182446305284263],
    [0.975, 10, 2.2281388519649385], [0.995, 5, 4.032142983557536], [0.9, 7, 1.4149239276505079], [0.025, 4, -2.7764451051977987],
  ];
  for (const [p, df, want] of table) {
    const got = studentTQuantile(p, df);
    assert.ok(Math.abs(got - want) <= 1e-9 * Math.abs(want), `t(${p}, ${df}) = ${got}, want ${want}`);
  }
});

test('fewer than two values give no half-width', () => {
  assert.ok(Number.isNaN(meanConfidenceInterval([50]).halfWidth));
  assert.equal(meanConfidenceInterval([50]).mean, 50);
  assert.equal(meanConfidenceInterval([70, 70, 70]).halfWidth, 0);
});
