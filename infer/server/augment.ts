/**
 * Test-time augmentation of support images, as in the few-shot evaluation protocol: random crop with
 * zero padding, then a horizontal flip with probability 1/2; no colour jitter. It works on uint8 pixels
 * before normalisation, so a padded border is black, exactly as torchvision's RandomCrop(padding) on a
 * PIL image followed by ToTensor and Normalize.
 */

export interface RandomSource {
  random(): number;
  randint(n: number): number;
}

/** Padding of the random crop: 4 pixels at 32x32 (CIFAR-FS, FC100), 8 at 84x84 (mini/tieredImageNet). */
export function cropPaddingFor(size: number): number {
  return size >= 64 ? 8 : 4;
}

/**
 * `copies` augmented versions of each of `count` images (size x size x 3), image-major: the copies of
 * image 0 first. The unaugmented image is not kept.
 */
export function augmentPixels(pixels: Uint8Array, count: number, size: number, copies: number, rng: RandomSource): Uint8Array {
  const imageBytes = size * size * 3;
  const padding = cropPaddingFor(size);
  const out = new Uint8Array(count * copies * imageBytes);
  for (let i = 0; i < count; i++) {
    const src = pixels.subarray(i * imageBytes, (i + 1) * imageBytes);
    for (let c = 0; c < copies; c++) {
      // Offsets into the padded image, 0..2*padding, like RandomCrop's top/left.
      const top = rng.randint(2 * padding + 1) - padding;
      const left = rng.randint(2 * padding + 1) - padding;
      const flip = rng.random() < 0.5;
      cropFlip(src, out.subarray((i * copies + c) * imageBytes, (i * copies + c + 1) * imageBytes), size, top, left, flip);
    }
  }
  return out;
}

function cropFlip(src: Uint8Array, dst: Uint8Array, size: number, top: number, left: number, flip: boolean): void {
  for (let y = 0; y < size; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= size) continue; // the zero padding; dst starts zeroed
    for (let x = 0; x < size; x++) {
      const sx = (flip ? size - 1 - x : x) + left;
      if (sx < 0 || sx >= size) continue;
      const s = (sy * size + sx) * 3;
      const d = (y * size + x) * 3;
      dst[d] = src[s] as number;
      dst[d + 1] = src[s + 1] as number;
      dst[d + 2] = src[s + 2] as number;
    }
  }
}
