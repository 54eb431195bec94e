import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from './helpers/run-skd.js';
import { createHead, headFromJSON, LogisticRegressionHead, NearestNeighborHead, PrototypeHead } from '../infer/heads/index.js';
import { l2NormalizeRows } from '../infer/features.js';
import { Rng } from '../data/rng.js';
import { gram } from '../infer/heads/logreg.js';
import { KernelWorkspace, SimdRows, simdAvailable, simdCombineRows } from '../infer/heads/simd.js';
import { pivotedCholesky } from '../infer/heads/cholesky.js';

interface LogregFixture {
  n_way: number; dim: number; X_train: number[][]; y_train: number[]; X_test: number[][];
  coef: number[][]; intercept: number[]; objective: number | null; predict: number[]; predict_proba: number[][];
}

const logregDir = join(FIXTURES, 'logreg');
const logregFiles = readdirSync(logregDir).filter((f) => f.endsWith('.json')).sort();

test('there are logistic-regression fixtures to check against', () => {
  assert.ok(logregFiles.length >= 5, `found ${logregFiles.length}`);
});

for (const file of logregFiles) {
  test(`logreg head matches scikit-learn on ${file}`, () => {
    const fx = JSON.parse(readFileSync(join(logregDir, file), 'utf8')) as LogregFixture;
    const n = fx.X_train.length, d = fx.dim, K = fx.n_way;
    const head = new LogisticRegressionHead();
    head.fit(Float32Array.from(fx.X_train.flat()), n, d, Int32Array.from(fx.y_train), K);
    const xt = Float32Array.from(fx.X_test.flat());
    const m = fx.X_test.length;
    assert.deepEqual(Array.from(head.predict(xt, m)), fx.predict, 'predictions');
    const proba = head.predictProba(xt, m);
    const expected = fx.predict_proba.flat();
    let maxDiff = 0;
    for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(proba[i]! - expected[i]!));
    assert.ok(maxDiff <= 1e-3, `probabilities differ by ${maxDiff}`);
    if (fx.objective !== null) {
      const rel = Math.abs(head.objective() - fx.objective) / Math.abs(fx.objective);
      assert.ok(rel <= 1e-6, `objective ${head.objective()} vs ${fx.objective} (relative ${rel})`);
    }
    if (K === 2) {
      // scikit-learn keeps one row, w1; the full multinomial optimum has w0 = -w1 (and b0 = -b1).
      for (let c = 0; c < d; c++) {
        assert.ok(Math.abs(head.coef[d + c]! - fx.coef[0]![c]!) < 1e-4, `w1[${c}]`);
        assert.ok(Math.abs(head.coef[c]! + head.coef[d + c]!) < 1e-6, `w0 = -w1 at ${c}`);
      }
      assert.ok(Math.abs(head.intercept[1]! - fx.intercept[0]!) < 1e-4);
    } else {
      let coefDiff = 0;
      fx.coef.flat().forEach((v, i) => { coefDiff = Math.max(coefDiff, Math.abs(v - head.coef[i]!)); });
      assert.ok(coefDiff < 1e-4, `coef differs by ${coefDiff}`);
    }
    assert.ok(head.fitInfo && head.fitInfo.gradientNorm <= 1e-6 * Math.max(1, Math.abs(head.objective())), 'converged');
  });
}

test('a head rebuilt from toJSON predicts the same', () => {
  const fx = JSON.parse(readFileSync(join(logregDir, 'tiny_3way.json'), 'utf8')) as LogregFixture;
  const x = Float32Array.from(fx.X_train.flat());
  const xt = Float32Array.from(fx.X_test.flat());
  for (const kind of ['logreg', 'proto', 'nn'] as const) {
    const head = createHead(kind);
    head.fit(x, fx.X_train.length, fx.dim, Int32Array.from(fx.y_train), fx.n_way);
    const state = JSON.parse(JSON.stringify(head.toJSON()));
    const again = headFromJSON(state);
    assert.equal(again.kind, kind);
    assert.deepEqual(Array.from(again.predict(xt, fx.X_test.length)), Array.from(head.predict(xt, fx.X_test.length)));
    const p = again.predictProba(xt, fx.X_test.length);
    for (let i = 0; i < fx.X_test.length; i++) {
      let s = 0;
      for (let k = 0; k < fx.n_way; k++) s += p[i * fx.n_way + k]!;
      assert.ok(Math.abs(s - 1) < 1e-5, `${kind} row ${i} probabilities sum to ${s}`);
    }
  }
});

test('the logreg solver works on rank-deficient support sets (duplicated rows)', () => {
  // 3 distinct rows, each repeated 4 times, in 16 dimensions: n = 12 < d; the solver works on the centred rows,
  // which span 2 dimensions.
  const base = [[1, 0, 0], [0, 1, 0], [0.6, 0, 0.8]];
  const d = 16, n = 12;
  const x = new Float32Array(n * d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) { const b = i % 3; base[b]!.forEach((v, c) => { x[i * d + c] = v; }); y[i] = b; }
  const head = new LogisticRegressionHead();
  head.fit(x, n, d, y, 3);
  assert.equal(head.fitInfo?.rank, 2);
  assert.deepEqual(Array.from(head.predict(x, n)), Array.from(y));
  // The same problem solved directly in d dimensions (n >= d path) reaches the same objective.
  const wide = new Float32Array(n * 2 * d); const yWide = new Int32Array(2 * n);
  for (let i = 0; i < 2 * n; i++) { wide.set(x.subarray((i % n) * d, (i % n + 1) * d), i * d); yWide[i] = y[i % n]!; }
  const twice = new LogisticRegressionHead({ C: 0.5 });
  twice.fit(wide.subarray(0, 2 * n * d), 2 * n, d, yWide, 3); // 24 rows >= 16 dims: primal solver
  // Doubling the data and halving C doubles the objective.
  assert.ok(Math.abs(twice.objective() - 2 * head.objective()) < 1e-8 * head.objective(), `${twice.objective()} vs 2 x ${head.objective()}`);
});

test('proto head picks the class with the most similar mean; nn the most similar support row', () => {
  const d = 3;
  const x = Float32Array.from([1, 0, 0, 0.9, 0.1, 0, 0, 1, 0, 0, 0.8, 0.2]);
  const y = Int32Array.from([0, 0, 1, 1]);
  const q = Float32Array.from([0.95, 0.05, 0, 0.1, 0.9, 0, 0, 0.7, 0.3]);
  const proto = new PrototypeHead();
  proto.fit(x, 4, d, y, 2);
  assert.deepEqual(Array.from(proto.predict(q, 3)), [0, 1, 1]);
  const p = proto.predictProba(q, 3);
  assert.ok(p[0]! > 0.5 && p[3]! > 0.5);
  const nn = new NearestNeighborHead();
  nn.fit(x, 4, d, y, 2);
  assert.deepEqual(Array.from(nn.predict(q, 3)), [0, 1, 1]);
  assert.deepEqual(Array.from(nn.predictProba(q, 3)), [1, 0, 0, 1, 0, 1]);
});

test('heads reject bad arguments with a message naming the problem', () => {
  const head = createHead('logreg');
  assert.throws(() => head.fit(new Float32Array(6), 2, 3, Int32Array.from([0, 2]), 2), /label 2/);
  assert.throws(() => head.fit(new Float32Array(5), 2, 3, Int32Array.from([0, 1]), 2), /expected n\*d/);
  assert.throws(() => head.predict(new Float32Array(3), 1), /not been fitted/);
  head.fit(Float32Array.from([1, 0, 0, 0, 1, 0]), 2, 3, Int32Array.from([0, 1]), 2);
  assert.throws(() => head.predict(new Float32Array(4), 1), /expected n\*d/);
  assert.throws(() => createHead('svm' as never), /unknown head/);
  assert.throws(() => headFromJSON({ kind: 'logreg', version: 1, numClasses: 2, dim: 3, parameters: { coef: [1, 2] } }), /coef/);
});

test('l2NormalizeRows scales rows to unit norm and leaves zero rows at zero', () => {
  const x = Float32Array.from([3, 4, 0, 0, 0, 0]);
  l2NormalizeRows(x, 2, 3);
  assert.deepEqual(Array.from(x), [0.6000000238418579, 0.800000011920929, 0, 0, 0, 0]);
});

test('the Gram matrix (WebAssembly SIMD kernel and scalar fallback) matches a plain double loop', () => {
  assert.ok(simdAvailable(), 'WebAssembly SIMD is available in Node 20');
  for (const [n, d] of [[125, 640], [7, 33], [1, 5], [10, 64]] as const) {
    const x = Float32Array.from({ length: n * d }, (_, i) => Math.sin(i * 1.7) * 0.3);
    const kernels = KernelWorkspace.open()!;
    const simd = gram(x, n, d, SimdRows.copy(kernels, x, n, d));
    kernels.close();
    const scalar = gram(x, n, d);
    for (let a = 0; a < n; a++) {
      for (let b = 0; b < n; b++) {
        let s = 0;
        for (let c = 0; c < d; c++) s += x[a * d + c]! * x[b * d + c]!;
        assert.ok(Math.abs(simd[a * n + b]! - s) <= 1e-6 * (1 + Math.abs(s)), `simd G[${a},${b}] (n=${n}, d=${d})`);
        assert.ok(Math.abs(scalar[a * n + b]! - s) <= 1e-12 * (1 + Math.abs(s)), `scalar G[${a},${b}]`);
      }
    }
  }
});

test('the logreg head gives the same solution with and without the SIMD kernels', () => {
  // The SIMD Gram sums float32 products (entries good to about 1e-8 relative), so the two optima agree to about that.
  for (const file of ['5way5shot_aug5_d640.json', '5way5shot_noaug_d64.json', 'tiny_3way.json']) {
    const fx = JSON.parse(readFileSync(join(logregDir, file), 'utf8')) as LogregFixture;
    const x = Float32Array.from(fx.X_train.flat());
    const y = Int32Array.from(fx.y_train);
    const fast = new LogisticRegressionHead({ simd: true });
    const plain = new LogisticRegressionHead({ simd: false });
    fast.fit(x, fx.X_train.length, fx.dim, y, fx.n_way);
    plain.fit(x, fx.X_train.length, fx.dim, y, fx.n_way);
    assert.ok(Math.abs(fast.objective() - plain.objective()) <= 1e-7 * plain.objective(), `${file}: ${fast.objective()} vs ${plain.objective()}`);
    const xt = Float32Array.from(fx.X_test.flat());
    assert.deepEqual(Array.from(fast.predict(xt, fx.X_test.length)), Array.from(plain.predict(xt, fx.X_test.length)));
  }
});

test('pivoted Cholesky reproduces a rank-deficient Gram matrix, with and without the SIMD column kernel', () => {
  // 13 rows in 7 dimensions (odd n, not a multiple of the kernel's 4-column step): rank 7.
  const n = 13, d = 7;
  const rng = new Rng(3);
  const x = Float32Array.from({ length: n * d }, () => rng.random() - 0.5);
  const G = gram(x, n, d);
  assert.ok(simdAvailable());
  for (const useSimd of [true, false]) {
    const kernels = useSimd ? KernelWorkspace.open() : null;
    const { L, stride, piv, rank } = pivotedCholesky(G, n, kernels);
    kernels?.close();
    assert.equal(rank, d, `rank (simd ${useSimd})`);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        let s = 0;
        for (let t = 0; t < rank; t++) s += L[i * stride + t]! * L[j * stride + t]!;
        const want = G[piv[i]! * n + piv[j]!]!;
        assert.ok(Math.abs(s - want) <= 1e-9 * (1 + Math.abs(want)), `(L L^T)[${i},${j}] = ${s}, G = ${want} (simd ${useSimd})`);
      }
      for (let t: number = rank; t < stride; t++) assert.equal(L[i * stride + t], 0, `L[${i},${t}] beyond the rank`);
    }
  }
});

test('the SIMD row combination equals the plain product', () => {
  const K = 3, n = 13, d = 10; // neither n nor d a multiple of 4
  const A = Float64Array.from({ length: K * n }, (_, i) => Math.cos(0.9 * i) * 3);
  const x = Float32Array.from({ length: n * d }, (_, i) => Math.sin(0.37 * i));
  const coef = new Float64Array(K * d);
  const kernels = KernelWorkspace.open()!;
  simdCombineRows(SimdRows.copy(kernels, x, n, d), coef, A, K);
  kernels.close();
  for (let k = 0; k < K; k++) {
    for (let c = 0; c < d; c++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += A[k * n + i]! * x[i * d + c]!;
      assert.ok(Math.abs(coef[k * d + c]! - s) <= 1e-12 * (1 + Math.abs(s)), `W[${k},${c}] = ${coef[k * d + c]}, want ${s}`);
    }
  }
});
