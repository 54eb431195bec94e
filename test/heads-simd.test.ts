import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildModule } from '../infer/heads/simd-kernels.js';
import { KernelCompiler, KernelWorkspace, SimdRows, simdGram, simdStatus } from '../infer/heads/simd.js';
import { gram, LogisticRegressionHead } from '../infer/heads/logreg.js';
import { Rng } from '../data/rng.js';

test('the kernel module validates and compiles without a warning', () => {
  assert.ok(WebAssembly.validate(buildModule() as BufferSource));
  const warnings: string[] = [];
  const compiler = new KernelCompiler(buildModule, (m) => warnings.push(m));
  assert.ok(compiler.module());
  assert.deepEqual(warnings, []);
  assert.deepEqual(simdStatus(), { available: true, reason: '' });
});

test('a kernel module that does not compile is reported once, and the fits fall back', () => {
  const warnings: string[] = [];
  const broken = () => { const bytes = buildModule(); bytes[bytes.length - 1] = 0x00; return bytes; }; // no final `end`
  const compiler = new KernelCompiler(broken, (m) => warnings.push(m));
  assert.equal(compiler.module(), null);
  assert.equal(compiler.module(), null);
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.match(warnings[0]!, /WebAssembly SIMD kernels did not compile \(.+\); the heads use their plain loops/);
  assert.match(compiler.reason, /did not compile/);
});

test('a workspace hands out regions that do not overlap and stay right when the memory grows', () => {
  const kernels = KernelWorkspace.open()!;
  const a = kernels.f64(3);
  a.view.set([1, 2, 3]);
  const b = kernels.f32(5);
  assert.ok(b.byteOffset >= a.byteOffset + 3 * 8 && b.byteOffset % 16 === 0);
  b.view.fill(7);
  const before = a.view;
  const big = kernels.f64(4 << 20); // 32 MiB: more than the initial memory, so it grows
  assert.equal(before.length, 0, 'a view made before the growth is detached');
  assert.deepEqual(Array.from(a.view), [1, 2, 3]);
  assert.deepEqual(Array.from(b.view), [7, 7, 7, 7, 7]);
  assert.equal(big.view[big.view.length - 1], 0);
  kernels.close();
  assert.throws(() => a.view, /used after close/);
  assert.throws(() => kernels.f64(1), /after close/);
});

test('regions from a reused instance are zero-filled, and the Gram output of one fit is not overwritten by the next', () => {
  const rng = new Rng(5);
  const n = 9, d = 40;
  const x = Float32Array.from({ length: n * d }, () => rng.random());
  const first = KernelWorkspace.open()!;
  const rows = SimdRows.copy(first, x, n, d);
  const G = new Float64Array(n * n);
  simdGram(rows, G);
  // A second fit while the first is open gets an instance of its own.
  const second = KernelWorkspace.open()!;
  assert.notEqual(second.kernels, first.kernels);
  second.f64(1000, false).view.fill(Number.NaN);
  second.close();
  const again = new Float64Array(n * n);
  simdGram(rows, again);
  assert.deepEqual(again, G);
  const scalar = gram(x, n, d);
  for (let i = 0; i < n * n; i++) assert.ok(Math.abs(G[i]! - scalar[i]!) <= 1e-6 * (1 + Math.abs(scalar[i]!)), `G[${i}]`);
  first.close();
  const reused = KernelWorkspace.open()!;
  assert.ok(reused.f64(1000).view.every((v) => v === 0), 'a reused instance hands out zeroed regions');
  reused.close();
});

test('fits after a memory growth give the answers of fits before it', () => {
  const rng = new Rng(11);
  const n = 40, d = 64, K = 4;
  const x = Float32Array.from({ length: n * d }, () => rng.random());
  const y = Int32Array.from({ length: n }, (_, i) => i % K);
  const fit = () => { const h = new LogisticRegressionHead(); h.fit(x, n, d, y, K); return h.coef; };
  const before = fit();
  const grow = KernelWorkspace.open()!;
  grow.f64(8 << 20, false); // grows this instance's memory; closing hands it to the next fit
  grow.close();
  assert.deepEqual(fit(), before);
});
