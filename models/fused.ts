/**
 * Memory-lean training-mode building blocks with hand-written gradients.
 *
 * TensorFlow.js keeps every intermediate tensor of a recorded forward pass until the gradients are done.
 * Written op by op, a batch-norm layer alone retains about six activation-sized tensors, and a full
 * ResNet-12 step on 256 images of 32x32 then exceeds the 4 GiB WebAssembly heap. These functions run
 * their forward pass untaped (tf.customGrad) and keep only what their backward pass needs:
 * - convBnAct: y = act(BN_train(conv(x, W) [+ bias])), keeping x, W, the conv output z and two
 *   per-channel vectors (the output y is kept by the caller's graph anyway);
 * - leakyReluFused: keeps only its output (the sign of y gives the slope).
 * The activation is PReLU with a constant slope (LeakyReLU's kernel is several times slower on wasm).
 */
import * as tf from '@tensorflow/tfjs-core';
import { conv2dGradients } from './conv-grad.js';

export interface ConvBnOptions {
  stride: number;
  padding: number;
  eps: number;
  momentum: number;
  /** Negative slope after batch-norm: 0 for ReLU, 0.1 for the reference's LeakyReLU, null for none. */
  alpha: number | null;
}

export interface RunningStats { mean: tf.Variable; variance: tf.Variable }

/** Leaky ReLU (alpha 0: ReLU) through the PReLU kernel. */
export function leakyReluForward(x: tf.Tensor, alpha: number): tf.Tensor {
  if (alpha === 0) return tf.relu(x);
  return tf.prelu(x, tf.fill([x.shape[x.rank - 1]], alpha));
}

/** dL/dx of a leaky ReLU from its output y: dy where y > 0, alpha * dy elsewhere. */
export function leakyReluBackward(dy: tf.Tensor, y: tf.Tensor, alpha: number): tf.Tensor {
  return tf.mul(dy, tf.step(y, alpha));
}

/** Leaky ReLU whose gradient keeps only the output (alpha >= 0, so y and x share their sign). */
export function leakyReluFused(x: tf.Tensor4D, alpha: number): tf.Tensor4D {
  const f = tf.customGrad<tf.Tensor4D>((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xi, save] = args as [tf.Tensor4D, tf.GradSaveFunc];
    const y = leakyReluForward(xi, alpha) as tf.Tensor4D;
    save([y]);
    return { value: y, gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => tf.tidy(() => [leakyReluBackward(dy, saved[0], alpha)]) };
  });
  return f(x);
}

/**
 * Per-channel sum over N, H, W of an NHWC tensor. (On wasm a ones-vector matrix product is faster in
 * isolation, but XNNPACK packs the activation-sized operand, which raised a full ResNet-12 step's peak heap
 * by a third; the plain reduction is kept.)
 */
export function channelSum(x: tf.Tensor): tf.Tensor1D {
  return tf.sum(x, [0, 1, 2]) as tf.Tensor1D;
}

/** What convBnActBackward needs from the forward pass. */
/** y (the output) is needed only with an activation; without one it is null, so that it need not be kept. */
export interface ConvBnSaved { x: tf.Tensor4D; w: tf.Tensor4D; z: tf.Tensor4D; y: tf.Tensor4D | null; mean: tf.Tensor1D; invStd: tf.Tensor1D; gamma: tf.Tensor1D }

/**
 * Training-mode conv -> batch-norm (batch statistics, biased variance) -> optional leaky ReLU, updating the
 * running statistics as PyTorch does (momentum blend, unbiased variance). Untaped: call inside a
 * customGrad forward. Returns the output and the tensors the backward pass needs.
 */
export function convBnActForward(
  x: tf.Tensor4D, w: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, bias: tf.Tensor1D | null, running: RunningStats, opts: ConvBnOptions,
): { y: tf.Tensor4D; saved: ConvBnSaved } {
  let z = tf.conv2d(x, w, opts.stride, opts.padding);
  if (bias) z = tf.add(z, bias);
  const count = z.shape[0] * z.shape[1] * z.shape[2];
  const mean = tf.div(channelSum(z), count) as tf.Tensor1D;
  const variance = tf.div(channelSum(tf.squaredDifference(z, mean)), count);
  const invStd = tf.rsqrt(tf.add(variance, opts.eps)) as tf.Tensor1D;
  const scale = tf.mul(gamma, invStd);
  const shift = tf.sub(beta, tf.mul(mean, scale));
  const pre = tf.add(tf.mul(z, scale), shift);
  const y = (opts.alpha === null ? pre : leakyReluForward(pre, opts.alpha)) as tf.Tensor4D;
  tf.tidy(() => {
    running.mean.assign(tf.add(tf.mul(running.mean, 1 - opts.momentum), tf.mul(mean, opts.momentum)));
    const unbiased = tf.mul(variance, count / Math.max(count - 1, 1));
    running.variance.assign(tf.add(tf.mul(running.variance, 1 - opts.momentum), tf.mul(unbiased, opts.momentum)));
  });
  return { y, saved: { x, w, z, y: opts.alpha === null ? null : y, mean, invStd, gamma } };
}

/** Gradients of convBnActForward for dy: [dx, dw, dgamma, dbeta, dbias?]. Call inside tf.tidy. */
export function convBnActBackward(dy: tf.Tensor4D, s: ConvBnSaved, hasBias: boolean, opts: ConvBnOptions): tf.Tensor[] {
  const count = s.z.shape[0] * s.z.shape[1] * s.z.shape[2];
  const dPre = opts.alpha === null || s.y === null ? dy : leakyReluBackward(dy, s.y, opts.alpha);
  // Batch-norm backward with xhat = (z - mean) * inv:
  //   dbeta = sum dPre, dgamma = sum dPre * xhat = inv * (sum dPre * z - mean * dbeta)
  //   dz = a * dPre + k1 * z + k0, a = gamma * inv, k1 = -a * inv * dgamma / n, k0 = -a * dbeta / n - k1 * mean
  const dBeta = channelSum(dPre);
  const dGamma = tf.mul(s.invStd, tf.sub(channelSum(tf.mul(dPre, s.z)), tf.mul(s.mean, dBeta)));
  const a = tf.mul(s.gamma, s.invStd);
  const k1 = tf.mul(tf.mul(a, s.invStd), tf.div(dGamma, -count));
  const k0 = tf.sub(tf.mul(a, tf.div(dBeta, -count)), tf.mul(k1, s.mean));
  const dz = tf.add(tf.mul(dPre, a), tf.add(tf.mul(s.z, k1), k0)) as tf.Tensor4D;
  const { dx, dw } = conv2dGradients(s.x, s.w, dz, { stride: opts.stride, padding: opts.padding });
  const grads: tf.Tensor[] = [dx, dw, dGamma, dBeta];
  if (hasBias) grads.push(channelSum(dz));
  return grads;
}

/** convBnActForward as a taped op with its hand-written gradient. */
export function convBnAct(
  x: tf.Tensor4D, w: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, bias: tf.Tensor1D | null, running: RunningStats, opts: ConvBnOptions,
): tf.Tensor4D {
  const f = tf.customGrad<tf.Tensor4D>((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const [xi, wi, g, b, cb] = args.slice(0, -1) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D | undefined];
    const { y, saved } = convBnActForward(xi, wi, g, b, cb ?? null, running, opts);
    save([saved.x, saved.w, saved.z, saved.y ?? y, saved.mean, saved.invStd, saved.gamma]);
    return {
      value: y,
      // Gradient functions run outside any tidy: without one, every temporary lives until the step ends.
      gradFunc: (dy: tf.Tensor4D, t: tf.Tensor[]) => tf.tidy(() => {
        const [xs, ws, z, ys, mean, invStd, gs] = t as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
        return convBnActBackward(dy, { x: xs, w: ws, z, y: ys, mean, invStd, gamma: gs }, cb !== undefined, opts);
      }),
    };
  });
  return bias ? f(x, w, gamma, beta, bias) : f(x, w, gamma, beta);
}
