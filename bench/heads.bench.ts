/**
 * Head speed: milliseconds per fit of the logistic-regression head (C = 1, solved to convergence) on episode-sized
 * support sets at 640-d, plus fit + predict of the prototype and nearest-neighbour heads.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../data/rng.js';
import { l2NormalizeRows } from '../infer/features.js';
import { LogisticRegressionHead, NearestNeighborHead, PrototypeHead, type Head } from '../infer/heads/index.js';
import { simdAvailable } from '../infer/heads/simd.js';

export const describe =
  'ms per head fit (wall min, median and mean, and process CPU time per fit, after 0.5 s of warm-up; on a busy machine the ' +
  'median and mean include time the process waited for a core, and min is the closest to an unshared core) at 640-d: logreg on the scikit-learn fixture ' +
  'episodes (5-way 5-shot x5 aug = 125 rows, 5-way 1-shot x5 aug = 25 rows) and on 20 synthetic 5-way 5-shot x5 ' +
  'aug episodes (clustered random features, L2-normalised); proto and nn fit + predict of 75 queries';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'logreg');

interface Problem { x: Float32Array; n: number; d: number; y: Int32Array; k: number; q: Float32Array; nq: number }

function fixture(name: string): Problem {
  const j = JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as { X_train: number[][]; y_train: number[]; X_test: number[][]; dim: number; n_way: number };
  return { x: Float32Array.from(j.X_train.flat()), n: j.X_train.length, d: j.dim, y: Int32Array.from(j.y_train), k: j.n_way, q: Float32Array.from(j.X_test.flat()), nq: j.X_test.length };
}

/** Class centres plus per-image and per-augmentation noise, roughly like augmented backbone features. */
function synthetic(seed: number): Problem {
  const rng = new Rng(seed);
  const d = 640, k = 5, shots = 5, aug = 5, nq = 75;
  const gauss = () => { const u = Math.max(rng.random(), 1e-12); return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.random()); };
  const centres = Float32Array.from({ length: k * d }, () => Math.abs(gauss()) + 0.5);
  const images = Float32Array.from({ length: k * shots * d }, (_, i) => centres[Math.floor(i / (shots * d)) * d + (i % d)]! + 0.8 * gauss());
  const n = k * shots * aug;
  const x = new Float32Array(n * d);
  const y = new Int32Array(n);
  for (let a = 0; a < aug; a++) for (let s = 0; s < k * shots; s++) {
    const row = a * k * shots + s;
    y[row] = Math.floor(s / shots);
    for (let c = 0; c < d; c++) x[row * d + c] = Math.max(0, images[s * d + c]! + 0.3 * gauss());
  }
  l2NormalizeRows(x, n, d);
  const q = Float32Array.from({ length: nq * d }, (_, i) => Math.max(0, centres[Math.floor(i / (15 * d)) * d + (i % d)]! + 0.8 * gauss()));
  l2NormalizeRows(q, nq, d);
  return { x, n, d, y, k, q, nq };
}

function timeFits(make: () => Head, problems: Problem[], repeats: number, predict: boolean): { min_ms: number; median_ms: number; mean_ms: number; cpu_ms_per_fit: number; fits: number } {
  const times: number[] = [];
  // Warm up until the engine has optimised the hot code (an evaluation fits hundreds of heads in a row).
  const warmUntil = performance.now() + 500;
  for (let warm = 0; warm < 3 || performance.now() < warmUntil; warm++) {
    for (const p of problems) { const head = make(); head.fit(p.x, p.n, p.d, p.y, p.k); if (predict) head.predict(p.q, p.nq); }
  }
  const cpuStart = process.cpuUsage();
  for (let r = 0; r < repeats; r++) {
    for (const p of problems) {
      const head = make();
      const t = performance.now();
      head.fit(p.x, p.n, p.d, p.y, p.k);
      if (predict) head.predict(p.q, p.nq);
      times.push(performance.now() - t);
    }
  }
  const cpu = process.cpuUsage(cpuStart);
  times.sort((a, b) => a - b);
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return {
    min_ms: round(times[0]!), median_ms: round(times[Math.floor(times.length / 2)]!), mean_ms: round(times.reduce((a, b) => a + b, 0) / times.length),
    cpu_ms_per_fit: round((cpu.user + cpu.system) / 1000 / times.length), fits: times.length,
  };
}

export async function run(): Promise<Record<string, unknown>> {
  const loadAverage = loadavg().map((v) => +v.toFixed(2));
  const fiveShot = fixture('5way5shot_aug5_d640.json');
  const oneShot = fixture('5way1shot_aug5_d640.json');
  const synth = Array.from({ length: 20 }, (_, i) => synthetic(i));
  const iterations = synth.map((p) => { const h = new LogisticRegressionHead(); h.fit(p.x, p.n, p.d, p.y, p.k); return h.fitInfo!.iterations; });
  return {
    load_average_at_start: loadAverage,
    simd_gram: simdAvailable(),
    logreg_5way5shot_aug5_fixture: timeFits(() => new LogisticRegressionHead(), [fiveShot], 100, false),
    logreg_5way1shot_aug5_fixture: timeFits(() => new LogisticRegressionHead(), [oneShot], 200, false),
    logreg_5way5shot_aug5_synthetic: { ...timeFits(() => new LogisticRegressionHead(), synth, 5, false), mean_iterations: iterations.reduce((a, b) => a + b, 0) / iterations.length },
    logreg_5way5shot_aug5_fit_and_predict: timeFits(() => new LogisticRegressionHead(), [fiveShot], 50, true),
    proto_fit_and_predict: timeFits(() => new PrototypeHead(), [fiveShot], 100, true),
    nn_fit_and_predict: timeFits(() => new NearestNeighborHead(), [fiveShot], 100, true),
  };
}
