/**
 * The keep masks of dropout and the reference's DropBlock, drawn in plain JavaScript from the project's seeded
 * generator (init.ts SeededStream), for NHWC activations. Both training engines use these: the TensorFlow.js
 * model wraps them in tensors, the ONNX Runtime engine transposes them to NCHW and feeds them to its step graph,
 * so the two engines, and a resumed run, see the same masks. There is no hidden generator state: the seed mixes
 * (dropoutSeed, training forward passes so far, node index).
 */
import { mix32, SeededStream } from './init.js';
import type { SpecNode } from './spec.js';

export type MaskNode = Extract<SpecNode, { op: 'dropout' | 'dropblock' }>;

/** Inverted-dropout mask: 0 with probability rate, else 1 / (1 - rate). */
export function dropoutMask(shape: number[], rate: number, seed: number): Float32Array {
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  const rng = new SeededStream(seed, 0);
  const kept = 1 / (1 - rate);
  for (let i = 0; i < out.length; i++) out[i] = rng.next() >= rate ? kept : 0;
  return out;
}

/** keep_rate = max(1 - dropRate * n / scheduleSteps, 1 - dropRate) (the reference's schedule). */
export function dropBlockKeepRate(calls: number, dropRate: number, scheduleSteps: number): number {
  return Math.max(1 - (dropRate * calls) / scheduleSteps, 1 - dropRate);
}

/** gamma = (1 - keep) / bs^2 * fs^2 / (fs - bs + 1)^2, fs the feature map's height as in the reference. */
export function dropBlockGamma(keepRate: number, blockSize: number, featureSize: number): number {
  return ((1 - keepRate) / (blockSize * blockSize)) * (featureSize * featureSize) / ((featureSize - blockSize + 1) ** 2);
}

/**
 * 1 - (each block seed at (i, j) dilated to rows i..i+bs-1, cols j..j+bs-1): NHWC seeds (0 or 1)
 * [N, H-bs+1, W-bs+1, C] -> keep mask [N, H, W, C], the reference's _compute_block_mask.
 */
export function blockKeepMask(seeds: Float32Array, [n, hs, ws, c]: number[], blockSize: number): Float32Array {
  const h = hs + blockSize - 1;
  const w = ws + blockSize - 1;
  const out = new Float32Array(n * h * w * c).fill(1);
  for (let b = 0; b < n; b++) for (let i = 0; i < hs; i++) for (let j = 0; j < ws; j++) {
    const from = ((b * hs + i) * ws + j) * c;
    for (let ch = 0; ch < c; ch++) {
      if (seeds[from + ch] !== 1) continue;
      for (let di = 0; di < blockSize; di++) for (let dj = 0; dj < blockSize; dj++) out[((b * h + i + di) * w + j + dj) * c + ch] = 0;
    }
  }
  return out;
}

/**
 * The reference's DropBlock mask for an NHWC shape, already multiplied by numel / sum(mask): block seeds
 * ~ Bernoulli(gamma) on [N, H-bs+1, W-bs+1, C]. Null when nothing can be dropped (gamma 0 or a map smaller
 * than the block).
 */
export function dropBlockMask([n, h, w, c]: number[], blockSize: number, keepRate: number, seed: number): Float32Array | null {
  const gamma = dropBlockGamma(keepRate, blockSize, h);
  const hs = h - blockSize + 1;
  const ws = w - blockSize + 1;
  if (!(gamma > 0) || hs <= 0 || ws <= 0) return null;
  const rng = new SeededStream(seed, 1);
  const seeds = new Float32Array(n * hs * ws * c);
  for (let i = 0; i < seeds.length; i++) seeds[i] = rng.next() < gamma ? 1 : 0;
  const keep = blockKeepMask(seeds, [n, hs, ws, c], blockSize);
  let kept = 0;
  for (const v of keep) kept += v;
  const scale = keep.length / Math.max(kept, 1);
  for (let i = 0; i < keep.length; i++) keep[i] *= scale;
  return keep;
}

/**
 * The keep mask (already rescaled) of a dropout or DropBlock node for an NHWC activation of `shape`, or null
 * for none. `calls` counts training forward passes including this one.
 */
export function trainingMask(node: MaskNode, index: number, shape: number[], dropoutSeed: number, calls: number): Float32Array | null {
  const seed = mix32(mix32(dropoutSeed >>> 0) ^ mix32(calls * 1024 + index));
  if (node.op === 'dropout') return node.rate > 0 ? dropoutMask(shape, node.rate, seed) : null;
  return dropBlockMask(shape, node.blockSize, dropBlockKeepRate(calls, node.dropRate, node.scheduleSteps), seed);
}
