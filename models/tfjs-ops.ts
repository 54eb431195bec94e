/**
 * Training-mode pieces of the TensorFlow.js forward pass: batch-norm with batch statistics and PyTorch's
 * running-statistics update. (The dropout and DropBlock masks are masks.ts's, shared with the ONNX Runtime engine.)
 */
import * as tf from '@tensorflow/tfjs-core';

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
