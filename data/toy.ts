/**
 * The built-in `toy` dataset: 100 classes of small synthetic scenes, generated from a seed (no download).
 *
 * Every class is a combination of shared parts: an object shape with a clear "up" (triangle, arrow, house,
 * tree, ...), the object's hue, and an extra element (a sun in one corner, a shadow under the object, stripes on
 * it, or none). Classes differ by one or more parts, so what a network learns on the 64 training classes
 * transfers to the 20 unseen test classes. Each image varies what does not define the class: position, scale,
 * tilt, saturation and brightness, hue within +-24 degrees (neighbouring hues overlap), the background (one of
 * four styles and three palettes, all lighter at the top: sky over ground, light from above), horizon height,
 * pixel noise, and whether the extra element shows (80%). Pixel statistics alone therefore say little about the
 * class, while shapes and colours learned on other classes do. Scenes are upright, so rotations are learnable.
 *
 * Classes 0-63 are `train`, 64-79 `val`, 80-99 `test` (`trainval` = 0-79). Same seed, same bytes.
 * Browser-safe: no Node imports.
 */
import { UserError } from './errors.js';
import { Rng } from './rng.js';
import type { ImageSet } from './types.js';
import { ImageStore } from './pixels.js';

export interface ToyOptions {
  split: string;
  seed?: number;
  imagesPerClass?: number;
  /** Side of the square images (default 32). */
  imageSize?: number;
}

export const TOY_CLASS_COUNT = 100;
export const TOY_SPLITS: Record<string, [number, number]> = { train: [0, 64], val: [64, 80], test: [80, 100], trainval: [0, 80] };

const SHAPES = ['triangle', 'arrow', 'house', 'tee', 'mushroom', 'tree', 'lollipop', 'vase', 'boot', 'bowl'] as const;
const BACKGROUNDS = ['gradient', 'horizon', 'sunlit', 'banded'] as const;
const EXTRAS = ['none', 'sun-left', 'sun-right', 'shadow', 'stripes'] as const;
/** Object hues in degrees; neighbours overlap once jittered. */
const HUES = [0, 36, 72, 108, 144, 180, 216, 252, 288, 324];
const HUE_JITTER = 24;
/** How often an image shows its class's extra element (so the extra alone does not give the class away). */
const EXTRA_PROBABILITY = 0.8;
/** Background palettes: [sky rgb, ground rgb] in 0..1. */
const PALETTES: [number, number, number][][] = [
  [[0.55, 0.75, 0.95], [0.35, 0.25, 0.15]],
  [[0.95, 0.8, 0.6], [0.2, 0.35, 0.15]],
  [[0.75, 0.75, 0.8], [0.15, 0.15, 0.25]],
];

/** One class: which part of each family it uses. */
export interface ToyClass { shape: number; hue: number; extra: number }

/** Is (u, v) inside the shape? Local coordinates in [-1, 1], v pointing up. */
function insideShape(shape: number, u: number, v: number): boolean {
  const au = u < 0 ? -u : u;
  switch (shape) {
    case 0: return v >= -0.8 && v <= 0.9 && au <= (0.9 * (0.9 - v)) / 1.7;
    case 1: return (v >= 0.1 && v <= 0.95 && au <= (0.9 * (0.95 - v)) / 0.85) || (au < 0.28 && v >= -0.9 && v < 0.1);
    case 2: return (au < 0.65 && v >= -0.85 && v < 0.1) || (v >= 0.1 && v <= 0.9 && au <= (0.9 * (0.9 - v)) / 0.8);
    case 3: return (au < 0.85 && v >= 0.45 && v <= 0.85) || (au < 0.25 && v >= -0.9 && v < 0.45);
    case 4: return (v > 0.05 && u * u + (v - 0.05) * (v - 0.05) < 0.72) || (au < 0.25 && v >= -0.9 && v <= 0.05);
    case 5: return (au < 0.15 && v >= -0.95 && v < -0.5) || (v >= -0.5 && v <= 0.95 && au <= (0.85 * (0.95 - v)) / 1.45);
    case 6: return u * u + (v - 0.45) * (v - 0.45) < 0.2 || (au < 0.12 && v >= -0.95 && v <= 0.45);
    case 7: return v >= -0.9 && v <= 0.8 && au < 0.25 + (0.55 * (v + 0.9)) / 1.7;
    case 8: return (u > -0.6 && u < 0.0 && v >= -0.9 && v <= 0.9) || (u > -0.6 && u < 0.8 && v >= -0.9 && v < -0.45);
    default: {
      const r2 = u * u + (v - 0.2) * (v - 0.2);
      return v < 0.2 && r2 > 0.3 && r2 < 0.81;
    }
  }
}

function hsvToRgb(h: number, s: number, v: number, out: Float32Array, at: number): void {
  const hh = (((h % 360) + 360) % 360) / 60;
  const i = Math.floor(hh);
  const f = hh - i;
  const p = v * (1 - s);
  const q = v * (1 - s * f);
  const t = v * (1 - s * (1 - f));
  const rgb = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i];
  out[at] = rgb[0];
  out[at + 1] = rgb[1];
  out[at + 2] = rgb[2];
}

/** The 100 class descriptors for a seed: distinct combinations, in a seeded order. */
export function toyClasses(seed: number): ToyClass[] {
  const rng = new Rng(Rng.derive(seed, 0xc1a55e5).nextUint32());
  const combos = SHAPES.length * HUES.length * EXTRAS.length;
  const picked = rng.choice(combos, TOY_CLASS_COUNT);
  return Array.from(picked, (k) => {
    let r = k;
    const shape = r % SHAPES.length; r = Math.floor(r / SHAPES.length);
    const hue = r % HUES.length; r = Math.floor(r / HUES.length);
    return { shape, hue, extra: r };
  });
}

export function toyClassName(c: ToyClass, id: number): string {
  return `${String(id).padStart(3, '0')}-${SHAPES[c.shape]}-h${HUES[c.hue]}-${EXTRAS[c.extra]}`;
}

/** Shared noise table: pixel noise is read from it at a random offset per image (cheaper than a draw per pixel). */
const NOISE_BITS = 16;
function noiseTable(seed: number): Float32Array {
  const rng = Rng.derive(seed, 0x5eed);
  const t = new Float32Array(1 << NOISE_BITS);
  for (let i = 0; i < t.length; i++) t[i] = (rng.random() + rng.random() - 1) * 1.2;
  return t;
}

/** Renders one image of class `c` into out[at .. at + size*size*3) using draws from rng. */
function renderImage(c: ToyClass, size: number, rng: Rng, noiseTab: Float32Array, rows: Float32Array, out: Uint8Array, at: number): void {
  // Per-image nuisances: placement, colours, background style and palette, horizon, noise.
  const cx = rng.uniform(-0.3, 0.3);
  const cy = rng.uniform(-0.2, 0.25);
  const scale = rng.uniform(0.4, 0.7);
  const tilt = rng.uniform(-0.3, 0.3);
  const cosT = Math.cos(tilt) / scale;
  const sinT = Math.sin(tilt) / scale;
  const reach2 = 1.5 * scale * (1.5 * scale); // every shape fits in radius sqrt(2) of its centre
  const colours = new Float32Array(3);
  hsvToRgb(HUES[c.hue] + rng.uniform(-HUE_JITTER, HUE_JITTER), rng.uniform(0.45, 0.95), rng.uniform(0.5, 1), colours, 0);
  const background = rng.randint(BACKGROUNDS.length);
  const [sky, ground] = PALETTES[rng.randint(PALETTES.length)];
  const skyRgb = [0, 1, 2].map((k) => sky[k] + rng.uniform(-0.15, 0.15));
  const groundRgb = [0, 1, 2].map((k) => ground[k] + rng.uniform(-0.1, 0.1));
  const horizon = rng.uniform(-0.55, 0.05);
  const showExtra = rng.random() < EXTRA_PROBABILITY;
  const extra = showExtra ? c.extra : 0;
  const sunX = (extra === 1 ? -0.6 : 0.6) + rng.uniform(-0.2, 0.2);
  const sunY = rng.uniform(0.5, 0.8);
  const sunR2 = rng.uniform(0.025, 0.06);
  const stripePeriod = rng.uniform(0.25, 0.4);
  const noise = rng.uniform(0.03, 0.09);
  let noiseAt = rng.randint(1 << NOISE_BITS);
  const noiseMask = (1 << NOISE_BITS) - 1;
  const inv = 2 / size;
  // Background colour of each row; every style is brighter/bluer at the top, so scenes have an up.
  for (let py = 0; py < size; py++) {
    const y = 1 - (py + 0.5) * inv;
    const t = (y + 1) / 2;
    for (let k = 0; k < 3; k++) {
      let v: number;
      if (background === 0) v = groundRgb[k] + (skyRgb[k] - groundRgb[k]) * t;
      else if (background === 1) v = y > horizon ? skyRgb[k] : groundRgb[k];
      else if (background === 2) v = skyRgb[k] * (0.45 + 0.55 * t);
      else v = (Math.floor((y + 1) * 3) % 2 === 0 ? skyRgb[k] : groundRgb[k]) * (0.5 + 0.5 * t);
      rows[py * 3 + k] = v;
    }
  }
  const fr = colours[0], fg = colours[1], fb = colours[2];
  const shape = c.shape;
  for (let py = 0; py < size; py++) {
    const y = 1 - (py + 0.5) * inv;
    const dy = y - cy;
    for (let px = 0; px < size; px++) {
      const x = (px + 0.5) * inv - 1;
      const dx = x - cx;
      let r = rows[py * 3], g = rows[py * 3 + 1], b = rows[py * 3 + 2];
      if (extra !== 0) {
        if (extra <= 2) {
          if ((x - sunX) * (x - sunX) + (y - sunY) * (y - sunY) < sunR2) { r = 1; g = 0.9; b = 0.35; }
        } else if (extra === 3) {
          const u = cosT * dx + sinT * dy;
          const v = -sinT * dx + cosT * dy;
          if (u * u * 0.6 + (v + 1.05) * (v + 1.05) * 6 < 0.6) { r *= 0.35; g *= 0.35; b *= 0.35; }
        }
      }
      if (dx * dx + dy * dy < reach2) {
        const u = cosT * dx + sinT * dy;
        const v = -sinT * dx + cosT * dy;
        if (insideShape(shape, u, v)) {
          const dark = extra === 4 && Math.floor((v + 2) / stripePeriod) % 2 === 0 ? 0.45 : 1;
          r = fr * dark; g = fg * dark; b = fb * dark;
        }
      }
      const o = at + (py * size + px) * 3;
      out[o] = clampByte(r + noise * noiseTab[noiseAt]);
      out[o + 1] = clampByte(g + noise * noiseTab[(noiseAt + 1) & noiseMask]);
      out[o + 2] = clampByte(b + noise * noiseTab[(noiseAt + 2) & noiseMask]);
      noiseAt = (noiseAt + 3) & noiseMask;
    }
  }
}

function clampByte(v: number): number {
  const x = (v * 255 + 0.5) | 0;
  return v <= 0 ? 0 : x > 255 ? 255 : x;
}

/**
 * Images per class unless told otherwise, everywhere the toy set is made (training, evaluation, `skd data make-toy`):
 * small enough that a CPU epoch takes seconds, enough for 5-way 5-shot episodes with 15 queries.
 */
export const TOY_IMAGES_PER_CLASS = 60;

/** Generates one split of the toy dataset. */
export function generateToy(opts: ToyOptions): ImageSet {
  const seed = opts.seed ?? 0;
  const perClass = opts.imagesPerClass ?? TOY_IMAGES_PER_CLASS;
  const size = opts.imageSize ?? 32;
  const range = TOY_SPLITS[opts.split];
  if (!range) throw new UserError(`toy dataset has no split "${opts.split}" (expected ${Object.keys(TOY_SPLITS).join(', ')})`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new UserError(`toy seed must be an integer in [0, 2^32), got ${seed}`);
  if (!Number.isInteger(perClass) || perClass < 1) throw new UserError(`images per class must be a positive integer, got ${perClass}`);
  if (!Number.isInteger(size) || size < 8 || size > 512) throw new UserError(`toy image size must be an integer in [8, 512], got ${size}`);
  const classes = toyClasses(seed);
  const [first, end] = range;
  const numClasses = end - first;
  const imageBytes = size * size * 3;
  const images = new Uint8Array(numClasses * perClass * imageBytes);
  const labels = new Int32Array(numClasses * perClass);
  const noiseTab = noiseTable(seed);
  const rows = new Float32Array(size * 3);
  for (let k = 0; k < numClasses; k++) {
    // One stream per class, so a split's bytes do not depend on which other splits were generated.
    const rng = Rng.derive(seed, first + k + 1);
    for (let i = 0; i < perClass; i++) {
      const n = k * perClass + i;
      labels[n] = k;
      renderImage(classes[first + k], size, rng, noiseTab, rows, images, n * imageBytes);
    }
  }
  const ids = Array.from({ length: numClasses }, (_, k) => first + k);
  return {
    name: 'toy',
    split: opts.split,
    images: ImageStore.fromBytes(images, imageBytes),
    count: labels.length,
    height: size,
    width: size,
    channels: 3,
    labels,
    classNames: ids.map((id) => toyClassName(classes[id], id)),
    originalIds: ids,
  };
}
