/**
 * Limited-memory BFGS with a strong-Wolfe line search (Nocedal & Wright, Numerical Optimization, algorithms 7.4,
 * 3.5 and 3.6, with safeguarded cubic interpolation). Plain TypeScript over Float64Array, browser-safe.
 * All work arrays are allocated once per call; the iteration allocates nothing.
 */

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
  const S = new Float64Array(m * dim);
  const Y = new Float64Array(m * dim);
  const rho = new Float64Array(m);
  const alphas = new Float64Array(m);
  const g = new Float64Array(dim);
  const dir = new Float64Array(dim);
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

    // Two-loop recursion: dir = -H g.
    for (let j = 0; j < dim; j++) dir[j] = -g[j]!;
    for (let t = 0; t < stored; t++) {
      const slot = (head - 1 - t + m) % m;
      const a = rho[slot]! * dotAt(S, slot * dim, dir, dim);
      alphas[slot] = a;
      axpyAt(-a, Y, slot * dim, dir, dim);
    }
    if (stored > 0) {
      const last = (head - 1 + m) % m;
      const gamma = 1 / (rho[last]! * dotAt(Y, last * dim, Y, dim, last * dim));
      for (let j = 0; j < dim; j++) dir[j] = dir[j]! * gamma;
    }
    for (let t = stored - 1; t >= 0; t--) {
      const slot = (head - 1 - t + m) % m;
      const b = rho[slot]! * dotAt(Y, slot * dim, dir, dim);
      axpyAt(alphas[slot]! - b, S, slot * dim, dir, dim);
    }

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
    const so = head * dim;
    let sy = 0;
    for (let j = 0; j < dim; j++) {
      const s = xt[j]! - x[j]!;
      const y = gt[j]! - g[j]!;
      S[so + j] = s;
      Y[so + j] = y;
      sy += s * y;
    }
    if (sy > 0) {
      rho[head] = 1 / sy;
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

function dotAt(a: Float64Array, offset: number, b: Float64Array, n: number, bOffset = 0): number {
  let s = 0;
  for (let j = 0; j < n; j++) s += a[offset + j]! * b[bOffset + j]!;
  return s;
}

function axpyAt(alpha: number, a: Float64Array, offset: number, y: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) y[j] = y[j]! + alpha * a[offset + j]!;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let j = 0; j < a.length; j++) m = Math.max(m, Math.abs(a[j]!));
  return m;
}
