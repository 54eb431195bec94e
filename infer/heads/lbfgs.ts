/**
 * Limited-memory BFGS with a strong-Wolfe line search (Nocedal & Wright, Numerical Optimization, algorithms 7.4,
 * 3.5 and 3.6, with safeguarded cubic interpolation). Plain TypeScript over Float64Array, browser-safe.
 * All work arrays are allocated once per call; the iteration allocates nothing.
 */
import { SimdLbfgsVectors, type KernelWorkspace } from './simd.js';

/** Writes the gradient at `x` into `grad` and returns the objective value. */
export type ObjectiveWithGradient = (x: Float64Array, grad: Float64Array) => number;

export interface LbfgsOptions {
  /** Iteration cap (each iteration is one line search). */
  maxIter: number;
  /** Stop when max |gradient| <= gradientTol * max(1, |f|). */
  gradientTol: number;
  /** Stop when the relative decrease of f in one iteration is below this (scipy's `ftol`). Default 64 * eps. */
  functionTol?: number;
  /** Number of correction pairs kept. Default 10 (as scipy). */
  memory?: number;
  /** Keep the pairs in this kernel memory and sweep them with SIMD (null or absent: plain loops). */
  kernels?: KernelWorkspace | null;
}

export interface LbfgsResult {
  f: number;
  iterations: number;
  evaluations: number;
  /** max |gradient| at the returned point. */
  gradientNorm: number;
  /** Why the iteration stopped. */
  stop: 'gradient' | 'function' | 'max-iter' | 'line-search';
}

const C1 = 1e-4;
const C2 = 0.9;
const MAX_LINE_SEARCH_EVALS = 40;

/** Minimises in place: `x` holds the start on entry and the solution on return. */
export function minimizeLbfgs(fg: ObjectiveWithGradient, x: Float64Array, opts: LbfgsOptions): LbfgsResult {
  const dim = x.length;
  const m = opts.memory ?? 10;
  const functionTol = opts.functionTol ?? 64 * Number.EPSILON;
  const simd = opts.kernels ? SimdLbfgsVectors.create(opts.kernels, dim, m) : null;
  // The objective must not add regions to the workspace (growth would move these views).
  const { S: Sv, Y: Yv, dir } = simd ? simd.vectors() : {
    S: Array.from({ length: m }, () => new Float64Array(dim)), Y: Array.from({ length: m }, () => new Float64Array(dim)), dir: new Float64Array(dim),
  };
  const rho = new Float64Array(m);
  const yy = new Float64Array(m);
  const alphas = new Float64Array(m);
  const g = new Float64Array(dim);
  const xt = new Float64Array(dim);
  const gt = new Float64Array(dim);
  let stored = 0;
  let head = 0; // index of the slot the next pair is written to

  let f = fg(x, g);
  let evaluations = 1;
  let gNorm = maxAbs(g);
  let iter = 0;
  let stop: LbfgsResult['stop'] = 'max-iter';

  while (iter < opts.maxIter) {
    if (gNorm <= opts.gradientTol * Math.max(1, Math.abs(f))) { stop = 'gradient'; break; }

    const pairs: Pairs = { S: Sv, Y: Yv, rho, yy, alphas, stored, head, m };
    if (simd) twoLoopSimd(g, dir, pairs, simd);
    else twoLoop(g, dir, pairs);

    let slope = dot(g, dir);
    if (!(slope < 0)) {
      // Not a descent direction (numerical trouble): restart from steepest descent.
      stored = 0;
      for (let j = 0; j < dim; j++) dir[j] = -g[j]!;
      slope = dot(g, dir);
    }
    const step0 = stored === 0 ? Math.min(1, 1 / Math.sqrt(-slope)) : 1;
    const ls = strongWolfe(fg, x, f, slope, dir, step0, xt, gt);
    evaluations += ls.evaluations;
    if (!ls.ok) { stop = 'line-search'; break; }
    iter++;

    // New correction pair s = xt - x, y = gt - g, stored in the ring buffer.
    const Sh = Sv[head]!, Yh = Yv[head]!;
    let sy = 0, yy2 = 0;
    for (let j = 0; j < dim; j++) {
      const s = xt[j]! - x[j]!;
      const y = gt[j]! - g[j]!;
      Sh[j] = s;
      Yh[j] = y;
      sy += s * y;
      yy2 += y * y;
    }
    if (sy > 0) {
      rho[head] = 1 / sy;
      yy[head] = yy2;
      head = (head + 1) % m;
      stored = Math.min(stored + 1, m);
    }
    const fPrev = f;
    x.set(xt);
    g.set(gt);
    f = ls.f;
    gNorm = maxAbs(g);
    if ((fPrev - f) <= functionTol * Math.max(Math.abs(fPrev), Math.abs(f), 1)) {
      stop = gNorm <= opts.gradientTol * Math.max(1, Math.abs(f)) ? 'gradient' : 'function';
      break;
    }
  }
  return { f, iterations: iter, evaluations, gradientNorm: gNorm, stop };
}

/** The stored correction pairs: ring buffers of m slots, the newest in slot head - 1. */
interface Pairs {
  S: Float64Array[]; Y: Float64Array[];
  /** 1 / s.y and y.y of each pair. */
  rho: Float64Array; yy: Float64Array;
  alphas: Float64Array;
  stored: number; head: number; m: number;
}

const slotOf = (p: Pairs, t: number) => (p.head - 1 - t + p.m) % p.m; // t = 0: newest

/**
 * The two-loop recursion, dir = -H g with H the L-BFGS inverse-Hessian approximation (initial H gamma I, gamma =
 * s.y / y.y of the newest pair). Each update of dir is fused with the dot product the next step needs, so dir
 * is swept once per pair and loop.
 */
function twoLoop(g: Float64Array, dir: Float64Array, p: Pairs): void {
  const dim = g.length;
  const { S, Y, rho, alphas, stored } = p;
  let next = 0;
  if (stored === 0) { for (let j = 0; j < dim; j++) dir[j] = -g[j]!; return; }
  const S0 = S[slotOf(p, 0)]!;
  for (let j = 0; j < dim; j++) { const v = -g[j]!; dir[j] = v; next += S0[j]! * v; }
  // Newest to oldest: a_t = rho_t s_t.dir; dir -= a_t y_t (with s_{t+1}.dir summed in the same sweep).
  for (let t = 0; t < stored; t++) {
    const slot = slotOf(p, t);
    const a = rho[slot]! * next;
    alphas[slot] = a;
    const Yt = Y[slot]!;
    const Sn = S[slotOf(p, Math.min(t + 1, stored - 1))]!;
    next = 0;
    for (let j = 0; j < dim; j++) { const v = dir[j]! - a * Yt[j]!; dir[j] = v; next += Sn[j]! * v; }
  }
  const newest = slotOf(p, 0);
  const gamma = 1 / (rho[newest]! * p.yy[newest]!);
  const Yo = Y[slotOf(p, stored - 1)]!;
  next = 0;
  for (let j = 0; j < dim; j++) { const v = dir[j]! * gamma; dir[j] = v; next += Yo[j]! * v; }
  // Oldest to newest: b = rho_t y_t.dir; dir += (a_t - b) s_t (with y_{t-1}.dir summed in the same sweep).
  for (let t = stored - 1; t >= 0; t--) {
    const slot = slotOf(p, t);
    const c = alphas[slot]! - rho[slot]! * next;
    const St = S[slot]!;
    const Yp = Y[slotOf(p, Math.max(t - 1, 0))]!;
    next = 0;
    for (let j = 0; j < dim; j++) { const v = dir[j]! + c * St[j]!; dir[j] = v; next += Yp[j]! * v; }
  }
}

/** The same recursion with each fused sweep in WebAssembly SIMD. */
function twoLoopSimd(g: Float64Array, dir: Float64Array, p: Pairs, simd: SimdLbfgsVectors): void {
  const { S, Y, rho, alphas, stored } = p;
  for (let j = 0; j < g.length; j++) dir[j] = -g[j]!;
  if (stored === 0) return;
  let next = simd.axpyDot(0, dir, S[slotOf(p, 0)]!);
  for (let t = 0; t < stored; t++) {
    const slot = slotOf(p, t);
    const a = rho[slot]! * next;
    alphas[slot] = a;
    next = simd.axpyDot(-a, Y[slot]!, S[slotOf(p, Math.min(t + 1, stored - 1))]!);
  }
  const newest = slotOf(p, 0);
  next = simd.axpyDot(1 / (rho[newest]! * p.yy[newest]!) - 1, dir, Y[slotOf(p, stored - 1)]!);
  for (let t = stored - 1; t >= 0; t--) {
    const slot = slotOf(p, t);
    next = simd.axpyDot(alphas[slot]! - rho[slot]! * next, S[slot]!, Y[slotOf(p, Math.max(t - 1, 0))]!);
  }
}

interface LineSearchResult { ok: boolean; f: number; evaluations: number }

/**
 * Finds a step a along `dir` meeting the strong Wolfe conditions. On success `xt` = x + a*dir and `gt` holds the
 * gradient there.
 */
function strongWolfe(
  fg: ObjectiveWithGradient, x: Float64Array, f0: number, slope0: number, dir: Float64Array, step0: number,
  xt: Float64Array, gt: Float64Array,
): LineSearchResult {
  let evaluations = 0;
  const phi = (a: number): number => {
    for (let j = 0; j < x.length; j++) xt[j] = x[j]! + a * dir[j]!;
    evaluations++;
    return fg(xt, gt);
  };
  const sufficient = (a: number, fa: number) => fa <= f0 + C1 * a * slope0;
  const curvature = (da: number) => Math.abs(da) <= -C2 * slope0;

  let aPrev = 0, fPrev = f0, dPrev = slope0;
  let a = step0;
  let lo = 0, flo = f0, dlo = slope0, hi = 0, fhi = 0, dhi = 0;
  let bracketed = false;
  while (evaluations < MAX_LINE_SEARCH_EVALS) {
    const fa = phi(a);
    const da = dot(gt, dir);
    if (!Number.isFinite(fa) || !sufficient(a, fa) || (evaluations > 1 && fa >= fPrev)) {
      lo = aPrev; flo = fPrev; dlo = dPrev; hi = a; fhi = fa; dhi = da; bracketed = true; break;
    }
    if (curvature(da)) return { ok: true, f: fa, evaluations };
    if (da >= 0) { lo = a; flo = fa; dlo = da; hi = aPrev; fhi = fPrev; dhi = dPrev; bracketed = true; break; }
    aPrev = a; fPrev = fa; dPrev = da;
    a = Math.min(a * 4, 1e10);
  }
  if (bracketed) {
    while (evaluations < MAX_LINE_SEARCH_EVALS) {
      const width = Math.abs(hi - lo);
      if (width <= 1e-16 * Math.max(Math.abs(lo), Math.abs(hi), 1e-300)) break;
      let aj = Number.isFinite(fhi) ? cubicMinimizer(lo, flo, dlo, hi, fhi, dhi) : NaN;
      const left = Math.min(lo, hi), right = Math.max(lo, hi);
      if (!Number.isFinite(aj) || aj < left + 0.1 * width || aj > right - 0.1 * width) aj = 0.5 * (lo + hi);
      const fj = phi(aj);
      const dj = dot(gt, dir);
      if (!Number.isFinite(fj) || !sufficient(aj, fj) || fj >= flo) {
        hi = aj; fhi = fj; dhi = dj;
      } else {
        if (curvature(dj)) return { ok: true, f: fj, evaluations };
        if (dj * (hi - lo) >= 0) { hi = lo; fhi = flo; dhi = dlo; }
        lo = aj; flo = fj; dlo = dj;
      }
    }
  }
  // No strong-Wolfe point: accept the best decreasing point found, if any (gt must hold its gradient).
  if (lo > 0 && flo < f0) {
    const f = phi(lo);
    return { ok: true, f, evaluations };
  }
  return { ok: false, f: f0, evaluations };
}

/** Minimiser of the cubic interpolating f and f' at a and b. */
function cubicMinimizer(a: number, fa: number, da: number, b: number, fb: number, db: number): number {
  const d1 = da + db - 3 * (fa - fb) / (a - b);
  const disc = d1 * d1 - da * db;
  if (disc < 0) return NaN;
  const d2 = Math.sign(b - a) * Math.sqrt(disc);
  return b - (b - a) * (db + d2 - d1) / (db - da + 2 * d2);
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += a[j]! * b[j]!;
  return s;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let j = 0; j < a.length; j++) m = Math.max(m, Math.abs(a[j]!));
  return m;
}
