/**
 * The SKD losses in TensorFlow.js ops (differentiable), exactly as docs/method.md (Gen-0 loss, Gen-1 loss) states them.
 *
 * Gen-0: L0 = CE(z, y_rep) + gamma * BCEWithLogits(r, onehot(rot)), both means over all 4B rows.
 * Gen-1: KD = T^2/B * sum_i KL(softmax(zt_i/T) || softmax(zs_i/T)) over the B unrotated rows,
 *        L2 = mean_i ||zs(x180_i) - zs(x_i)||_2, L1 = KD + gamma * L2 / 3.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface Gen0LossParts {
  loss: tf.Scalar;
  ce: tf.Scalar;
  ss: tf.Scalar;
}

export interface Gen1LossParts {
  loss: tf.Scalar;
  kd: tf.Scalar;
  l2: tf.Scalar;
}

/** Mean softmax cross-entropy of logits [N, C] against integer labels [N]. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const onehot = tf.cast(tf.oneHot(labels, logits.shape[1]), 'float32');
    const logProb = tf.logSoftmax(logits, 1);
    return tf.neg(tf.mean(tf.sum(tf.mul(onehot, logProb), 1))) as tf.Scalar;
  });
}

/** Mean BCEWithLogits: softplus(r) - r * t, which is PyTorch's stable form max(r,0) - r t + log(1 + e^-|r|). */
export function bceWithLogits(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.sub(tf.softplus(logits), tf.mul(logits, targets))));
}

/** Rotation labels 0,1,2,3 by block of `batch` rows: [0 x B, 1 x B, 2 x B, 3 x B]. */
export function rotationLabels(batch: number): Int32Array {
  const out = new Int32Array(4 * batch);
  for (let k = 0; k < 4; k++) out.fill(k, k * batch, (k + 1) * batch);
  return out;
}

/**
 * Gen-0 loss. z: class logits [4B, C] and r: rotation logits [4B, 4] for rows [x, x90, x180, x270];
 * yRepeated: the B labels repeated 4 times [4B].
 */
export function gen0Loss(z: tf.Tensor2D, r: tf.Tensor2D, yRepeated: tf.Tensor1D, gamma: number): Gen0LossParts {
  return tf.tidy(() => {
    const rows = z.shape[0];
    if (rows % 4 !== 0) throw new Error(`Gen-0 loss needs 4B rows, got ${rows}`);
    const ce = crossEntropy(z, yRepeated);
    const rotTargets = tf.cast(tf.oneHot(tf.tensor1d(rotationLabels(rows / 4), 'int32'), 4), 'float32');
    const ss = bceWithLogits(r, rotTargets);
    const loss = tf.add(ce, tf.mul(ss, gamma)) as tf.Scalar;
    return { loss, ce, ss };
  });
}

/**
 * Gen-1 loss. zTeacher: teacher logits [B, C] of the unrotated images (treated as constants);
 * zStudent: student logits [2B, C] for rows [x; x180].
 */
export function gen1Loss(zTeacher: tf.Tensor2D, zStudent: tf.Tensor2D, temperature: number, gamma: number): Gen1LossParts {
  return tf.tidy(() => {
    const b = zTeacher.shape[0];
    if (zStudent.shape[0] !== 2 * b) throw new Error(`Gen-1 loss needs 2B student rows for B=${b} teacher rows, got ${zStudent.shape[0]}`);
    const student = tf.slice(zStudent, [0, 0], [b, -1]);
    const student180 = tf.slice(zStudent, [b, 0], [b, -1]);
    const logPt = tf.logSoftmax(tf.div(zTeacher, temperature), 1);
    const pt = tf.exp(logPt);
    const logPs = tf.logSoftmax(tf.div(student, temperature), 1);
    // KLDivLoss(sum) / B * T^2; rows where pt underflows to 0 contribute 0 as in PyTorch (0 * finite).
    const kd = tf.mul(tf.sum(tf.mul(pt, tf.sub(logPt, logPs))), (temperature * temperature) / b) as tf.Scalar;
    // Euclidean norm; the floor keeps the gradient finite (zero) for identical rows, as torch.norm's is.
    const sq = tf.sum(tf.square(tf.sub(student180, student)), 1);
    const l2 = tf.mean(tf.sqrt(tf.maximum(sq, 1e-24))) as tf.Scalar;
    const loss = tf.add(kd, tf.mul(l2, gamma / 3)) as tf.Scalar;
    return { loss, kd, l2 };
  });
}
