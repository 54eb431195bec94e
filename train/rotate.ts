/**
 * Image rotations of an NHWC batch as TensorFlow.js ops, matching the reference (numpy rot90 semantics,
 * counter-clockwise; test/fixtures/rotations/rot.json): x90 = transpose(H, W) then flip(H), x180 = flip(H)
 * then flip(W), x270 = flip(H) then transpose(H, W). Square images only (as the reference's).
 */
import * as tf from '@tensorflow/tfjs-core';

export function rotate90(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.reverse(tf.transpose(x, [0, 2, 1, 3]), 1));
}

export function rotate180(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.reverse(x, [1, 2]));
}

export function rotate270(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.transpose(tf.reverse(x, 1), [0, 2, 1, 3]));
}

/** [x, x90, x180, x270] stacked along the batch axis (4B images). */
export function withAllRotations(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.concat([x, rotate90(x), rotate180(x), rotate270(x)], 0));
}

/** [x, x180] stacked along the batch axis (2B images), the Gen-1 student's input. */
export function withHalfTurn(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.concat([x, rotate180(x)], 0));
}
