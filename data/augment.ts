/**
 * Batch augmentation in the reference's order (torchvision on PIL images):
 * RandomCrop(size, padding) -> ColorJitter(brightness, contrast, saturation) -> RandomHorizontalFlip(0.5)
 * -> ToTensor (/255) -> Normalize(mean, std); plus the four rotations used by the self-supervised task.
 *
 * The crop and jitter work on uint8 pixels with PIL's arithmetic (blend, truncate, clip after each
 * enhancement), the flip and normalisation are fused into one lookup-table pass that writes float32 NHWC.
 * Browser-safe: no Node imports.
 */
import type { ImageSet, Normalization } from './types.js';
import type { Rng } from './rng.js';

export interface AugmentOptions {
  /** Zero padding on each side before the random crop back to the image size (0 = no crop). */
  padding: number;
  /** Random horizontal flip with probability 0.5. */
  flip: boolean;
  /** Colour jitter strength: brightness, contrast and saturation factors uniform in [1-j, 1+j] (0 = off). */
  jitter: number;
  normalization: Normalization;
}

/**
 * The one normalisation of skd (training, evaluation, serving, the page, the export check): x' = (x - mean) / std
 * with x, mean and std rounded to float32 first, as torchvision's ToTensor + Normalize compute it on float32
 * tensors; the quotient is rounded to float32 when stored.
 */
export function normalizeValue(x: number, mean: number, std: number): number {
  return (Math.fround(x) - Math.fround(mean)) / Math.fround(std);
}

/** lut[c * 256 + v] = normalizeValue(v / 255, mean[c], std[c]), as float32. */
export function normalizationTable(normalization: Normalization, channels = 3): Float32Array {
  const lut = new Float32Array(channels * 256);
  for (let c = 0; c < channels; c++) {
    const mean = normalization.mean[c % 3];
    const std = normalization.std[c % 3];
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = normalizeValue(v / 255, mean, std);
  }
  return lut;
}

/** Normalises float NHWC values already on the 0-1 scale (the export check's random images). */
export function normalizeFloats(x: Float32Array, channels: number, normalization: Normalization): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = (i % channels) % 3;
    out[i] = normalizeValue(x[i], normalization.mean[c], normalization.std[c]);
  }
  return out;
}

const tableCache = new WeakMap<Normalization, Float32Array[]>();
function cachedTable(normalization: Normalization, channels: number): Float32Array {
  let byChannels = tableCache.get(normalization);
  if (!byChannels) tableCache.set(normalization, (byChannels = []));
  return (byChannels[channels] ??= normalizationTable(normalization, channels));
}

function checkIndices(set: ImageSet, indices: ArrayLike<number>): void {
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i];
    if (!Number.isInteger(k) || k < 0 || k >= set.count) throw new RangeError(`image index ${k} is outside 0..${set.count - 1}`);
  }
}

// Grey levels use Pillow's RGB -> L conversion (ITU-R 601-2 luma, fixed point): (r*19595 + g*38470 + b*7471 + 0x8000) >> 16.

/** PIL Image.blend(degenerate, img, f) for 8-bit: truncate toward zero, clip to [0, 255]. */
function blend(degenerate: number, v: number, f: number): number {
  const t = degenerate + f * (v - degenerate);
  return t <= 0 ? 0 : t >= 255 ? 255 : t | 0;
}

/**
 * ColorJitter: brightness, contrast and saturation in a random order, each with a factor uniform in [1-j, 1+j],
 * each rounded to uint8 as PIL does. Brightness and contrast are per-value maps, so consecutive ones are
 * composed into `pending` (a 256-entry table) instead of being applied pass by pass; saturation mixes channels
 * and applies the pending table first. Returns the table still to apply (the caller fuses it with the
 * normalisation), leaving `px` as the image before that table.
 */
function colorJitter(px: Uint8Array, channels: number, jitter: number, rng: Rng, pending: Uint8Array, scratch: Uint8Array): Uint8Array {
  const order = rng.permutation(3);
  const lo = Math.max(0, 1 - jitter);
  const hi = 1 + jitter;
  const factors = [rng.uniform(lo, hi), rng.uniform(lo, hi), rng.uniform(lo, hi)];
  for (let v = 0; v < 256; v++) pending[v] = v;
  for (let k = 0; k < 3; k++) {
    const op = order[k];
    const f = factors[op];
    if (op === 0) {
      // ImageEnhance.Brightness: blend with black.
      for (let v = 0; v < 256; v++) pending[v] = blend(0, pending[v], f);
    } else if (op === 1) {
      // ImageEnhance.Contrast: blend with the grey level int(mean(L) + 0.5) of the current image.
      let sum = 0;
      if (channels >= 3) {
        for (let i = 0; i < px.length; i += channels) sum += (pending[px[i]] * 19595 + pending[px[i + 1]] * 38470 + pending[px[i + 2]] * 7471 + 0x8000) >> 16;
      } else {
        for (let i = 0; i < px.length; i += channels) sum += pending[px[i]];
      }
      const mean = Math.floor(sum / (px.length / channels) + 0.5);
      for (let v = 0; v < 256; v++) scratch[v] = blend(mean, pending[v], f);
      pending.set(scratch);
    } else if (channels >= 3) {
      // ImageEnhance.Color: blend with the image's own grey version.
      for (let i = 0; i < px.length; i += channels) {
        const r = pending[px[i]], g = pending[px[i + 1]], b = pending[px[i + 2]];
        const grey = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
        const tr = grey + f * (r - grey);
        const tg = grey + f * (g - grey);
        const tb = grey + f * (b - grey);
        px[i] = tr <= 0 ? 0 : tr >= 255 ? 255 : tr | 0;
        px[i + 1] = tg <= 0 ? 0 : tg >= 255 ? 255 : tg | 0;
        px[i + 2] = tb <= 0 ? 0 : tb >= 255 ? 255 : tb | 0;
      }
      for (let v = 0; v < 256; v++) pending[v] = v;
    }
  }
  return pending;
}

/** RandomCrop padding of the reference: 4 for 32x32 images, 8 up to 84x84, then about a tenth of the side. */
export function paddingForSize(size: number): number {
  return size <= 32 ? 4 : size <= 84 ? 8 : Math.round(size / 10);
}

/**
 * RandomCrop(size, padding) of the image at `src` into `tmp`: the top-left corner uniform in [0, 2*pad] of the
 * zero-padded image (two draws, y then x; none when pad is 0).
 */
function randomCrop(images: Uint8Array, src: number, h: number, w: number, c: number, pad: number, rng: Rng, tmp: Uint8Array): void {
  const imageSize = h * w * c;
  const rowSize = w * c;
  const dy = pad > 0 ? rng.randint(2 * pad + 1) - pad : 0;
  const dx = pad > 0 ? rng.randint(2 * pad + 1) - pad : 0;
  if (dy === 0 && dx === 0) {
    tmp.set(images.subarray(src, src + imageSize));
    return;
  }
  tmp.fill(0);
  const x0 = Math.max(0, -dx);
  const x1 = Math.min(w, w - dx);
  for (let y = 0; y < h; y++) {
    const sy = y + dy;
    if (sy < 0 || sy >= h || x1 <= x0) continue;
    const from = src + sy * rowSize + (x0 + dx) * c;
    const to = y * rowSize + x0 * c;
    const len = (x1 - x0) * c;
    for (let i = 0; i < len; i++) tmp[to + i] = images[from + i];
  }
}

/**
 * The evaluation protocol's test-time augmentation of support images on uint8 RGB pixels (count x size x size x 3):
 * `copies` rounds over the images in np.tile order (every image once, then again), each a random crop with zero
 * padding paddingForSize(size) and a flip with probability 1/2. The draws are augmentBatch's with jitter 0 on the
 * same indices, so `skd serve` and the page get the pixels that `skd eval` feeds for the same seed.
 */
export function augmentSupportPixels(pixels: Uint8Array, count: number, size: number, copies: number, rng: Rng): Uint8Array {
  const imageSize = size * size * 3;
  if (pixels.length !== count * imageSize) throw new RangeError(`augmentSupportPixels: ${pixels.length} bytes for ${count} images of ${size}x${size}x3`);
  const pad = paddingForSize(size);
  const out = new Uint8Array(count * copies * imageSize);
  const tmp = new Uint8Array(imageSize);
  const rowSize = size * 3;
  for (let k = 0; k < count * copies; k++) {
    randomCrop(pixels, (k % count) * imageSize, size, size, 3, pad, rng, tmp);
    const o = k * imageSize;
    if (rng.random() < 0.5) {
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const s = y * rowSize + (size - 1 - x) * 3;
          const d = o + y * rowSize + x * 3;
          out[d] = tmp[s]!;
          out[d + 1] = tmp[s + 1]!;
          out[d + 2] = tmp[s + 2]!;
        }
      }
    } else {
      out.set(tmp, o);
    }
  }
  return out;
}

/**
 * Augments the images at `indices` and returns them as float32 NHWC (indices.length x H x W x C), normalised.
 * Per image the draws are: crop offsets (y, x), then jitter order and factors, then the flip coin.
 */
export function augmentBatch(set: ImageSet, indices: ArrayLike<number>, rng: Rng, opts: AugmentOptions): Float32Array {
  checkIndices(set, indices);
  const { height: h, width: w, channels: c } = set;
  const imageSize = h * w * c;
  const rowSize = w * c;
  const baseLut = cachedTable(opts.normalization, c);
  const out = new Float32Array(indices.length * imageSize);
  const tmp = new Uint8Array(imageSize);
  const pending = new Uint8Array(256);
  const scratch = new Uint8Array(256);
  const imageLut = new Float32Array(c * 256);
  const pad = Math.max(0, Math.floor(opts.padding));
  for (let n = 0; n < indices.length; n++) {
    randomCrop(set.images.image(indices[n]), 0, h, w, c, pad, rng, tmp);
    let lut = baseLut;
    if (opts.jitter > 0) {
      const table = colorJitter(tmp, c, opts.jitter, rng, pending, scratch);
      for (let k = 0; k < c; k++) for (let v = 0; v < 256; v++) imageLut[k * 256 + v] = baseLut[k * 256 + table[v]];
      lut = imageLut;
    }
    const flip = opts.flip && rng.random() < 0.5;
    let o = n * imageSize;
    if (!flip && c === 3) {
      for (let i = 0; i < imageSize; i += 3) {
        out[o++] = lut[tmp[i]];
        out[o++] = lut[256 + tmp[i + 1]];
        out[o++] = lut[512 + tmp[i + 2]];
      }
    } else {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const s = y * rowSize + (flip ? w - 1 - x : x) * c;
          for (let k = 0; k < c; k++) out[o++] = lut[k * 256 + tmp[s + k]];
        }
      }
    }
  }
  return out;
}

/** ToTensor + Normalize only (no augmentation), for evaluation queries. */
export function normalizeBatch(set: ImageSet, indices: ArrayLike<number>, normalization: Normalization): Float32Array {
  checkIndices(set, indices);
  const imageSize = set.height * set.width * set.channels;
  const lut = cachedTable(normalization, set.channels);
  const c = set.channels;
  const out = new Float32Array(indices.length * imageSize);
  for (let n = 0; n < indices.length; n++) {
    const px = set.images.image(indices[n]);
    const o = n * imageSize;
    if (c === 3) {
      for (let i = 0; i < imageSize; i += 3) {
        out[o + i] = lut[px[i]];
        out[o + i + 1] = lut[256 + px[i + 1]];
        out[o + i + 2] = lut[512 + px[i + 2]];
      }
    } else {
      for (let i = 0; i < imageSize; i++) out[o + i] = lut[(i % c) * 256 + px[i]];
    }
  }
  return out;
}

/** Normalises `count` NHWC RGB images of uint8 pixels (for callers that hold raw pixels, not an ImageSet). */
export function normalizePixels(pixels: Uint8Array, count: number, normalization: Normalization): Float32Array {
  if (count <= 0 || pixels.length % count !== 0 || (pixels.length / count) % 3 !== 0) {
    throw new RangeError(`${pixels.length} bytes are not ${count} RGB images`);
  }
  const lut = cachedTable(normalization, 3);
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i += 3) {
    out[i] = lut[pixels[i]];
    out[i + 1] = lut[256 + pixels[i + 1]];
    out[i + 2] = lut[512 + pixels[i + 2]];
  }
  return out;
}

/**
 * Rotates n NHWC images counter-clockwise by k * 90 degrees (numpy rot90 on the H, W axes). Rotations by
 * 90 and 270 degrees swap H and W; the images used here are square.
 */
export function rotateBatch(x: Float32Array, n: number, h: number, w: number, c: number, k: 0 | 1 | 2 | 3): Float32Array {
  if (x.length !== n * h * w * c) throw new RangeError(`rotateBatch: ${x.length} values are not ${n}x${h}x${w}x${c}`);
  if (k === 0) return x.slice();
  const out = new Float32Array(x.length);
  const size = h * w * c;
  // Output shape: (h, w) for k = 2, (w, h) for k = 1, 3. For each output pixel find its source.
  const oh = k === 2 ? h : w;
  const ow = k === 2 ? w : h;
  for (let b = 0; b < n; b++) {
    const base = b * size;
    let o = base;
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        let sy: number;
        let sx: number;
        if (k === 1) { sy = j; sx = w - 1 - i; } // rot90: out[i, j] = in[j, W-1-i]
        else if (k === 2) { sy = h - 1 - i; sx = w - 1 - j; }
        else { sy = h - 1 - j; sx = i; } // rot270: out[i, j] = in[H-1-j, i]
        const s = base + (sy * w + sx) * c;
        for (let ch = 0; ch < c; ch++) out[o++] = x[s + ch];
      }
    }
  }
  return out;
}
