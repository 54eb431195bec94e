/**
 * SGD with momentum and weight decay, PyTorch semantics (torch.optim.SGD, dampening 0, no Nesterov):
 *   g = grad + wd * w;  buf = m * buf + g  (buf = g on the first step);  w = w - lr * buf
 * Weight decay applies to every trainable parameter, batch-norm affine parameters and biases included, as
 * the reference passes model.parameters() to SGD. Parameters without a gradient are left alone, as in PyTorch.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedWeights } from '../models/spec.js';
import type { TfModel } from '../models/tfjs.js';

export interface SgdOptions {
  momentum: number;
  weightDecay: number;
}

export class Sgd {
  /** Momentum buffers, parallel to the variables, in the variables' own layout. */
  private readonly buffers: tf.Variable[];

  constructor(private readonly variables: tf.Variable[], readonly options: SgdOptions) {
    // tidy frees the zeros tensor; the variable keeps its own reference to the data.
    this.buffers = variables.map((v) => tf.tidy(() => tf.variable(tf.zerosLike(v), false)));
  }

  /** Applies one update with gradients keyed by tf.Variable name (as tf.variableGrads returns them). */
  step(grads: tf.NamedTensorMap, lr: number): void {
    const { momentum, weightDecay } = this.options;
    tf.tidy(() => {
      this.variables.forEach((v, i) => {
        const g0 = grads[v.name];
        // A parameter the loss does not reach (Gen-1's rotation head) is skipped, weight decay included,
        // as PyTorch skips parameters whose .grad is None.
        if (!g0) return;
        const g = weightDecay !== 0 ? tf.add(g0, tf.mul(v, weightDecay)) : g0;
        const buf = this.buffers[i];
        const next = tf.add(tf.mul(buf, momentum), g);
        buf.assign(next);
        v.assign(tf.sub(v, tf.mul(next, lr)));
      });
    });
  }

  /** The momentum buffers, parallel to the variables (owned by the optimiser; do not dispose). */
  momentumBuffers(): tf.Tensor[] {
    return this.buffers;
  }

  /** Restores the buffers from tensors parallel to the variables (same layouts). */
  setMomentumBuffers(tensors: tf.Tensor[]): void {
    if (tensors.length !== this.buffers.length) throw new Error(`expected ${this.buffers.length} momentum buffers, got ${tensors.length}`);
    tensors.forEach((t, i) => this.buffers[i].assign(t));
  }

  /** Restores momentum buffers saved in a checkpoint (PyTorch layout) for the model whose variables these are. */
  restoreMomentum(model: Pick<TfModel, 'fromNamedWeights'>, momentum: NamedWeights): void {
    const buffers = model.fromNamedWeights(momentum);
    try {
      this.setMomentumBuffers(buffers);
    } finally {
      tf.dispose(buffers);
    }
  }

  dispose(): void {
    for (const b of this.buffers) b.dispose();
  }
}
