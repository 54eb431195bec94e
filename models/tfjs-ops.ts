/**
 * Training-mode pieces of the TensorFlow.js forward pass: batch-norm with batch statistics and PyTorch's
 * running-statistics update, dropout masks and the reference's DropBlock.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mix32 } from './init.js';
import type { SpecNode } from './spec.js';

/**
 * Batch-norm over N, H, W with the batch's statistics (biased variance, as PyTorch normalises), and the
 * PyTorch running update: running = (1 - momentum) * running + momentum * batch, with the unbiased variance.
 */
export function batchNormTraining(
  x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, running: { mean: tf.Variable; variance: tf.Variable }, eps: number, momentum: number,
): tf.Tensor4D {
  const count = x.shape[0] * x.shape[1] * x.shape[2];
  const mean = tf.mean(x, [0, 1, 2]);
  const centered = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centered), [0, 1, 2]);
  tf.tidy(() => {
    const unbiased = tf.mul(variance, count / Math.max(count - 1, 1));
    running.mean.assign(tf.add(tf.mul(running.mean, 1 - momentum), tf.mul(mean, momentum)));
    running.variance.assign(tf.add(tf.mul(running.variance, 1 - momentum), tf.mul(unbiased, momentum)));
  });
  const scale = tf.mul(gamma, tf.rsqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(centered, scale), beta) as tf.Tensor4D;
}

/** Inverted-dropout mask: 0 with probability rate, else 1 / (1 - rate). */
export function dropoutMask(shape: number[], rate: number, seed: number): tf.Tensor {
  return tf.tidy(() => {
    const u = tf.randomUniform(shape, 0, 1, 'float32', seed);
    return tf.mul(tf.cast(tf.greaterEqual(u, rate), 'float32'), 1 / (1 - rate));
  });
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
 * The reference's DropBlock mask for an NHWC tensor, already multiplied by numel / sum(mask): block seeds
 * ~ Bernoulli(gamma) on [N, H-bs+1, W-bs+1, C]; each seed at (i, j) zeroes rows i..i+bs-1, cols j..j+bs-1.
 * Returns null when nothing can be dropped (gamma 0 or a map smaller than the block).
 */
export function dropBlockMask(shape: [number, number, number, number], blockSize: number, keepRate: number, seed: number): tf.Tensor4D | null {
  const [n, h, w, c] = shape;
  const gamma = dropBlockGamma(keepRate, blockSize, h);
  if (!(gamma > 0) || h - blockSize + 1 <= 0 || w - blockSize + 1 <= 0) return null;
  return tf.tidy(() => {
    const u = tf.randomUniform([n, h - blockSize + 1, w - blockSize + 1, c], 0, 1, 'float32', seed);
    const keep = blockMaskFromSeeds(tf.cast(tf.less(u, gamma), 'float32') as tf.Tensor4D, blockSize);
    const kept = tf.maximum(tf.sum(keep), 1);
    return tf.mul(keep, tf.div(n * h * w * c, kept)) as tf.Tensor4D;
  });
}

/**
 * 1 - (each block seed at (i, j) dilated to rows i..i+bs-1, cols j..j+bs-1): seeds [N, H-bs+1, W-bs+1, C]
 * -> keep mask [N, H, W, C], the reference's _compute_block_mask as a max-pool of the zero-padded seeds.
 */
export function blockMaskFromSeeds(seeds: tf.Tensor4D, blockSize: number): tf.Tensor4D {
  return tf.tidy(() => {
    const p = blockSize - 1;
    const blocks = p > 0 ? tf.maxPool(tf.pad(seeds, [[0, 0], [p, p], [p, p], [0, 0]]) as tf.Tensor4D, blockSize, 1, 'valid') : seeds;
    return tf.sub(1, blocks) as tf.Tensor4D;
  });
}

/**
 * The keep mask (already rescaled) of a dropout or DropBlock node for an NHWC activation, or null for none.
 * It holds no hidden generator state: the seed mixes (dropoutSeed, dropBlockCalls, node index), so both
 * engines, and a resumed run, draw the same masks. `calls` counts training forward passes including this one.
 */
export function trainingMask(
  node: Extract<SpecNode, { op: 'dropout' | 'dropblock' }>, index: number, shape: number[], dropoutSeed: number, calls: number,
): tf.Tensor | null {
  const seed = mix32(mix32(dropoutSeed >>> 0) ^ mix32(calls * 1024 + index));
  if (node.op === 'dropout') return node.rate > 0 ? dropoutMask(shape, node.rate, seed) : null;
  const keep = dropBlockKeepRate(calls, node.dropRate, node.scheduleSteps);
  return dropBlockMask(shape as [number, number, number, number], node.blockSize, keep, seed);
}
