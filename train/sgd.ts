/**
 * SGD with momentum and weight decay, PyTorch semantics (torch.optim.SGD, dampening 0, no Nesterov):
 *   g = grad + wd * w;  buf = m * buf + g  (buf = g on the first step);  w = w - lr * buf
 * Weight decay applies to every trainable parameter, batch-norm affine parameters and biases included, as
 * the reference passes model.parameters() to SGD.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedWeights } from '../models/spec.js';

export interface SgdOptions {
  momentum: number;
  weightDecay: number;
}

/** One trainable tensor and the PyTorch-layout name the momentum buffer is saved under. */
export interface NamedVariable {
  name: string;
  variable: tf.Variable;
}

export class Sgd {
  private readonly buffers = new Map<string, tf.Variable>();

  constructor(private readonly params: NamedVariable[], readonly options: SgdOptions) {
    for (const p of params) this.buffers.set(p.name, tf.variable(tf.zerosLike(p.variable), false));
  }

  /** Applies one update with the given gradients, keyed by tf.Variable name (as tf.variableGrads returns them). */
  step(grads: tf.NamedTensorMap, lr: number): void {
    const { momentum, weightDecay } = this.options;
    tf.tidy(() => {
      for (const p of this.params) {
        const g0 = grads[p.variable.name];
        if (!g0) throw new Error(`no gradient for ${p.name}`);
        const g = weightDecay !== 0 ? tf.add(g0, tf.mul(p.variable, weightDecay)) : g0;
        const buf = this.buffers.get(p.name)!;
        const next = tf.add(tf.mul(buf, momentum), g);
        buf.assign(next);
        p.variable.assign(tf.sub(p.variable, tf.mul(next, lr)));
      }
    });
  }

  /**
   * Momentum buffers in the layout the checkpoint stores (the caller converts each variable's layout to
   * PyTorch's with `toTorch`, the same conversion it uses for the weights).
   */
  async getMomentum(toTorch: (name: string, t: tf.Tensor) => Promise<{ data: Float32Array; shape: number[] }>): Promise<NamedWeights> {
    const out: NamedWeights = new Map();
    for (const [name, buf] of this.buffers) out.set(name, await toTorch(name, buf));
    return out;
  }

  /** Restores buffers from a checkpoint (converted to each variable's layout by `fromTorch`). */
  setMomentum(saved: NamedWeights, fromTorch: (name: string, t: { data: Float32Array; shape: number[] }) => tf.Tensor): void {
    for (const [name, buf] of this.buffers) {
      const s = saved.get(name);
      if (!s) throw new Error(`momentum buffer ${name} is missing`);
      tf.tidy(() => buf.assign(fromTorch(name, s)));
    }
  }

  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}
