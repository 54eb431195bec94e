/**
 * SGD over Float32Arrays with PyTorch's semantics (torch.optim.SGD, dampening 0, no Nesterov), the same
 * rule as train/sgd.ts: g = grad + wd * w; buf = m * buf + g (buf starts at 0, so the first step gives g);
 * w = w - lr * buf. Every parameter that has a gradient is decayed; one without (Gen-1's rotation head) is
 * left alone. Each value is rounded to float32 after every operation, as PyTorch's float32 kernels do.
 */
export interface SgdOptions {
  momentum: number;
  weightDecay: number;
}

const f = Math.fround;

export function sgdUpdate(weight: Float32Array, grad: Float32Array, buffer: Float32Array, lr: number, opts: SgdOptions): void {
  const m = f(opts.momentum);
  const wd = f(opts.weightDecay);
  const rate = f(lr);
  for (let i = 0; i < weight.length; i++) {
    const w = weight[i];
    const g = f(grad[i] + f(wd * w));
    const b = f(f(m * buffer[i]) + g);
    buffer[i] = b;
    weight[i] = f(w - f(rate * b));
  }
}
