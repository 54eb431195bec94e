/**
 * A seeded random stream compatible with numpy's legacy `RandomState` (MT19937), so that the reference's
 * `np.random.seed(i); np.random.choice(...)` episodes can be reproduced draw for draw.
 *
 * Browser-safe: no Node imports.
 */

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

/** The generator's full state as a plain, JSON-serialisable object. */
export interface RngState {
  /** The 624 words of MT19937 state. */
  key: number[];
  /** Index of the next word to temper (624 means "regenerate first"). */
  pos: number;
}

/** Smallest all-ones bit mask >= max (max < 2^32). */
function maskFor(max: number): number {
  let mask = max >>> 0;
  mask |= mask >>> 1;
  mask |= mask >>> 2;
  mask |= mask >>> 4;
  mask |= mask >>> 8;
  mask |= mask >>> 16;
  return mask >>> 0;
}

export class Rng {
  private readonly mt = new Uint32Array(N);
  private pos = N;

  /** Seeds like `np.random.seed(seed)` for an integer seed in [0, 2^32). */
  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`seed must be an integer in [0, 2^32), got ${seed}`);
    }
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.pos = N;
  }

  /**
   * An independent stream for item `index` of a run seeded with `seed` (for example one per image or per
   * episode), so items can be generated in any order or in parallel with the same result.
   */
  static derive(seed: number, index: number): Rng {
    // splitmix-style mixing of the pair into one 32-bit seed; distinct pairs give well-spread seeds.
    let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    h = Math.imul(h ^ (index >>> 0), 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
    h = Math.imul(h + Math.floor(index / 0x100000000), 0x27d4eb2f) >>> 0;
    h = (h ^ (h >>> 15)) >>> 0;
    return new Rng(h);
  }

  static fromState(s: RngState): Rng {
    if (!s || !Array.isArray(s.key) || s.key.length !== N || !Number.isInteger(s.pos) || s.pos < 0 || s.pos > N) {
      throw new RangeError('not an Rng state: expected { key: 624 integers, pos: 0..624 }');
    }
    const r = new Rng(0);
    r.mt.set(s.key.map((v) => v >>> 0));
    r.pos = s.pos;
    return r;
  }

  getState(): RngState {
    return { key: Array.from(this.mt), pos: this.pos };
  }

  private regenerate(): void {
    const mt = this.mt;
    let kk = 0;
    let y: number;
    for (; kk < N - M; kk++) {
      y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
      mt[kk] = mt[kk + M] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    for (; kk < N - 1; kk++) {
      y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
      mt[kk] = mt[kk + (M - N)] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    y = (mt[N - 1] & UPPER_MASK) | (mt[0] & LOWER_MASK);
    mt[N - 1] = mt[M - 1] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    this.pos = 0;
  }

  /** The next tempered 32-bit word, as an unsigned number. */
  nextUint32(): number {
    if (this.pos >= N) this.regenerate();
    let y = this.mt[this.pos++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** Uniform in [0, 1) with 53 bits, like numpy's `random_sample`. */
  random(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Uniform in [low, high), like numpy's `uniform(low, high)`. */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.random();
  }

  /** Uniform integer in [0, n), like numpy's legacy `randint(n)` (masked rejection sampling). */
  randint(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0x100000000) throw new RangeError(`randint bound must be in [1, 2^32], got ${n}`);
    const max = n - 1;
    if (max === 0) return 0;
    if (max === 0xffffffff) return this.nextUint32();
    const mask = maskFor(max);
    let v: number;
    do v = (this.nextUint32() & mask) >>> 0; while (v > max);
    return v;
  }

  /** Uniform integer in [0, max], numpy's `random_interval` (used by the legacy shuffle). */
  private interval(max: number): number {
    if (max === 0) return 0;
    const mask = maskFor(max);
    let v: number;
    do v = (this.nextUint32() & mask) >>> 0; while (v > max);
    return v;
  }

  /** Shuffles in place exactly like numpy's legacy `RandomState.shuffle` on a 1-d array. */
  shuffleInPlace<T extends { length: number; [i: number]: number }>(a: T): T;
  shuffleInPlace<E>(a: E[]): E[];
  shuffleInPlace(a: { length: number; [i: number]: unknown }): unknown {
    if (a.length > 0xffffffff) throw new RangeError('array too long to shuffle');
    for (let i = a.length - 1; i >= 1; i--) {
      const j = this.interval(i);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** `np.random.permutation(n)`. */
  permutation(n: number): Int32Array {
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = i;
    return this.shuffleInPlace(a);
  }

  /** `np.random.choice(n, k, replace=False)`: the first k entries of permutation(n). */
  choice(n: number, k: number): Int32Array {
    if (k > n) throw new RangeError(`cannot take ${k} distinct samples from ${n}`);
    return this.permutation(n).slice(0, k);
  }
}
