/**
 * The built-in `toy` dataset: 100 classes of small synthetic scenes, generated from a seed (no download).
 *
 * Every class is a combination of shared parts: an object shape with a clear "up" (triangle, arrow, house,
 * tree, ...), the object's colour, a background that also has an up (sky over ground, light from above), and an
 * extra element (a sun in one corner, a shadow under the object, stripes on it). Classes differ by one or more
 * parts, so what a network learns on the 64 training classes transfers to the 20 unseen test classes. Each image
 * varies position, scale, tilt, colours, horizon height and pixel noise, so a single example does not pin its
 * class down. Scenes are drawn upright, so predicting a rotation is learnable.
 *
 * Classes 0-63 are `train`, 64-79 `val`, 80-99 `test` (`trainval` = 0-79). Same seed, same bytes.
 * Browser-safe: no Node imports.
 */
import { UserError } from './errors.js';
import { Rng } from './rng.js';
import type { ImageSet } from './types.js';

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
/** Object hues in degrees. */
const HUES = [0, 30, 55, 100, 160, 210, 260, 310];
/** Background palettes: [sky rgb, ground rgb] in 0..1. */
const PALETTES: [number, number, number][][] = [
  [[0.55, 0.75, 0.95], [0.35, 0.25, 0.15]],
  [[0.95, 0.8, 0.6], [0.2, 0.35, 0.15]],
  [[0.75, 0.75, 0.8], [0.15, 0.15, 0.25]],
];

/** One class: which part of each family it uses. */
export interface ToyClass { shape: number; hue: number; background: number; extra: number; palette: number }

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
  const combos = SHAPES.length * HUES.length * BACKGROUNDS.length * EXTRAS.length * PALETTES.length;
  const picked = rng.choice(combos, TOY_CLASS_COUNT);
  return Array.from(picked, (k) => {
    let r = k;
    const shape = r % SHAPES.length; r = Math.floor(r / SHAPES.length);
    const hue = r % HUES.length; r = Math.floor(r / HUES.length);
    const background = r % BACKGROUNDS.length; r = Math.floor(r / BACKGROUNDS.length);
    const extra = r % EXTRAS.length; r = Math.floor(r / EXTRAS.length);
    return { shape, hue, background, extra, palette: r };
  });
}

export function toyClassName(c: ToyClass, id: number): string {
  return `${String(id).padStart(3, '0')}-${SHAPES[c.shape]}-h${HUES[c.hue]}-${BACKGROUNDS[c.background]}-${EXTRAS[c.extra]}-p${c.palette}`;
}

/** Renders one image of class `c` into out[at .. at + size*size*3) using draws from rng. */
function renderImage(c: ToyClass, size: number, rng: Rng, out: Uint8Array, at: number): void {
  // Per-image variation.
  const cx = rng.uniform(-0.3, 0.3);
  const cy = rng.uniform(-0.2, 0.25);
  const scale = rng.uniform(0.4, 0.7);
  const tilt = rng.uniform(-0.3, 0.3);
  const cosT = Math.cos(tilt) / scale;
  const sinT = Math.sin(tilt) / scale;
  const colours = new Float32Array(12);
  hsvToRgb(HUES[c.hue] + rng.uniform(-18, 18), rng.uniform(0.55, 0.95), rng.uniform(0.55, 1), colours, 0);
  const [sky, ground] = PALETTES[c.palette];
  const shift = [rng.uniform(-0.12, 0.12), rng.uniform(-0.12, 0.12), rng.uniform(-0.12, 0.12)];
  for (let k = 0; k < 3; k++) {
    colours[3 + k] = sky[k] + shift[k];
    colours[6 + k] = ground[k] + shift[k] * 0.5;
  }
  const horizon = rng.uniform(-0.55, 0.05);
  const sunX = (c.extra === 1 ? -0.6 : 0.6) + rng.uniform(-0.2, 0.2);
  const sunY = rng.uniform(0.5, 0.8);
  const sunR2 = rng.uniform(0.025, 0.06);
  const stripePeriod = rng.uniform(0.25, 0.4);
  const noise = rng.uniform(0.03, 0.09);
  let state = (rng.nextUint32() | 1) >>> 0; // xorshift32 for pixel noise: cheap and seeded
  const fr = colours[0], fg = colours[1], fb = colours[2];
  const inv = 2 / size;
  for (let py = 0; py < size; py++) {
    const y = 1 - (py + 0.5) * inv;
    // Background colour of this row; every style is brighter/bluer at the top.
    let br: number, bg: number, bb: number;
    if (c.background === 0) {
      const t = (y + 1) / 2;
      br = colours[6] + (colours[3] - colours[6]) * t; bg = colours[7] + (colours[4] - colours[7]) * t; bb = colours[8] + (colours[5] - colours[8]) * t;
    } else if (c.background === 1) {
      const isSky = y > horizon;
      br = isSky ? colours[3] : colours[6]; bg = isSky ? colours[4] : colours[7]; bb = isSky ? colours[5] : colours[8];
    } else if (c.background === 2) {
      const t = 0.45 + 0.55 * ((y + 1) / 2);
      br = colours[3] * t; bg = colours[4] * t; bb = colours[5] * t;
    } else {
      const band = Math.floor((y + 1) * 3) % 2 === 0;
      const t = 0.5 + 0.5 * ((y + 1) / 2);
      br = (band ? colours[3] : colours[6]) * t; bg = (band ? colours[4] : colours[7]) * t; bb = (band ? colours[5] : colours[8]) * t;
    }
    for (let px = 0; px < size; px++) {
      const x = (px + 0.5) * inv - 1;
      const dx = x - cx;
      const dy = y - cy;
      const u = cosT * dx + sinT * dy;
      const v = -sinT * dx + cosT * dy;
      let r = br, g = bg, b = bb;
      if ((c.extra === 1 || c.extra === 2) && (x - sunX) * (x - sunX) + (y - sunY) * (y - sunY) < sunR2) {
        r = 1; g = 0.9; b = 0.35;
      } else if (c.extra === 3 && u * u * 0.6 + (v + 1.05) * (v + 1.05) * 6 < 0.6) {
        r *= 0.35; g *= 0.35; b *= 0.35;
      }
      if (insideShape(c.shape, u, v)) {
        const dark = c.extra === 4 && Math.floor((v + 2) / stripePeriod) % 2 === 0 ? 0.45 : 1;
        r = fr * dark; g = fg * dark; b = fb * dark;
      }
      // Pixel noise in [-noise, noise], one draw per channel.
      state ^= state << 13; state ^= state >>> 17; state ^= state << 5;
      const n0 = ((state >>> 0) / 4294967296 - 0.5) * 2 * noise;
      state ^= state << 13; state ^= state >>> 17; state ^= state << 5;
      const n1 = ((state >>> 0) / 4294967296 - 0.5) * 2 * noise;
      state ^= state << 13; state ^= state >>> 17; state ^= state << 5;
      const n2 = ((state >>> 0) / 4294967296 - 0.5) * 2 * noise;
      const o = at + (py * size + px) * 3;
      out[o] = clampByte(r + n0);
      out[o + 1] = clampByte(g + n1);
      out[o + 2] = clampByte(b + n2);
    }
  }
}

function clampByte(v: number): number {
  const x = Math.round(v * 255);
  return x < 0 ? 0 : x > 255 ? 255 : x;
}

/** Generates one split of the toy dataset. */
export function generateToy(opts: ToyOptions): ImageSet {
  const seed = opts.seed ?? 0;
  const perClass = opts.imagesPerClass ?? 600;
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
  for (let k = 0; k < numClasses; k++) {
    // One stream per class, so a split's bytes do not depend on which other splits were generated.
    const rng = Rng.derive(seed, first + k + 1);
    for (let i = 0; i < perClass; i++) {
      const n = k * perClass + i;
      labels[n] = k;
      renderImage(classes[first + k], size, rng, images, n * imageBytes);
    }
  }
  const ids = Array.from({ length: numClasses }, (_, k) => first + k);
  return {
    name: 'toy',
    split: opts.split,
    images,
    count: labels.length,
    height: size,
    width: size,
    channels: 3,
    labels,
    classNames: ids.map((id) => toyClassName(classes[id], id)),
    originalIds: ids,
  };
}
