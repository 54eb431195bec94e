/**
 * Seeded initial weights in PyTorch layout, following the reference's initialisation:
 * - conv weights: Kaiming normal, mode fan_out, gain sqrt(2) (leaky_relu with a = 0, as
 *   `nn.init.kaiming_normal_(w, mode='fan_out', nonlinearity='leaky_relu')`): std = sqrt(2 / (out * k * k));
 * - conv biases and Linear layers: PyTorch's defaults, U(-1/sqrt(fan_in), 1/sqrt(fan_in));
 * - batch-norm: weight 1, bias 0, running mean 0, running variance 1.
 * Deterministic for a given seed (no Math.random); each parameter draws from its own stream derived from
 * (seed, parameter index), so adding a parameter does not shift the others.
 */
import { specParameters, type ModelSpec, type NamedWeights } from './spec.js';

/** A small counter-based generator (splitmix32 finaliser over a 32-bit counter). */
export class SeededStream {
  private state: number;

  constructor(seed: number, stream: number) {
    this.state = mix32((seed >>> 0) ^ mix32(stream + 0x9e3779b9));
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  next(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    return mix32(this.state) / 4294967296;
  }

  /** Standard normal by Box-Muller. */
  normal(): number {
    const u = 1 - this.next(); // (0, 1]
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

export function mix32(x: number): number {
  let z = x >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

export function initWeights(spec: ModelSpec, seed: number): NamedWeights {
  if (!Number.isInteger(seed)) throw new Error(`initWeights: seed must be an integer, got ${seed}`);
  const fanIn = new Map<string, number>();
  for (const n of spec.nodes) {
    if (n.op === 'conv2d') fanIn.set(n.name, n.inChannels * n.kernel * n.kernel);
    else if (n.op === 'linear') fanIn.set(n.name, n.inFeatures);
  }
  const weights: NamedWeights = new Map();
  specParameters(spec).forEach((p, index) => {
    const size = p.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    const owner = p.name.slice(0, p.name.lastIndexOf('.'));
    const rng = new SeededStream(seed, index);
    const inputs = fanIn.get(owner);
    if (p.kind === 'running_var') data.fill(1);
    else if (p.kind === 'running_mean') data.fill(0);
    else if (inputs === undefined) data.fill(p.kind === 'weight' ? 1 : 0); // batch-norm affine
    else if (p.kind === 'weight' && p.shape.length === 4) {
      const fanOut = p.shape[0] * p.shape[2] * p.shape[3];
      const std = Math.SQRT2 / Math.sqrt(fanOut);
      for (let i = 0; i < size; i++) data[i] = std * rng.normal();
    } else {
      const bound = 1 / Math.sqrt(inputs);
      for (let i = 0; i < size; i++) data[i] = (2 * rng.next() - 1) * bound;
    }
    weights.set(p.name, { data, shape: [...p.shape] });
  });
  return weights;
}
