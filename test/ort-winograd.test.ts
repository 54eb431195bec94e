/**
 * Winograd F(4x4, 3x3) convolutions against the direct ones (train/ort/convolution.ts) and a plain loop,
 * forward, input gradient and filter gradient, at sizes that are and are not multiples of the tile.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { SeededStream } from '../models/init.js';
import { encodeOnnxModel } from '../proto/codec.js';
import { GraphBuilder } from '../train/ort/graph-builder.js';
import { convolution, type ConvAlgorithm, type ConvDims } from '../train/ort/convolution.js';
import { relativeError } from './helpers/train-step-fixture.js';

function convGraph(d: ConvDims, algorithm: ConvAlgorithm): Uint8Array {
  const g = new GraphBuilder();
  const { h, w, n, inChannels: ci, outChannels: co } = d;
  const x = g.input('x', [h, w, n, ci]);
  const weight = g.input('weight', [co, ci, 3, 3]);
  const dy = g.input('dy', [h, w, n, co]);
  const conv = convolution(g, algorithm, 3, x, weight, d);
  g.output('y', conv.y, [h, w, n, co]);
  g.output('dx', conv.inputGrad(dy), [h, w, n, ci]);
  g.output('dw', conv.filterGrad(dy), [co, ci, 3, 3]);
  return encodeOnnxModel(g.model(`conv_${algorithm}`));
}

/** y[i, j, n, o] = sum over c, a, b of x[i + a - 1, j + b - 1, n, c] w[o, c, a, b], zero outside. */
function loopConv(x: Float32Array, weight: Float32Array, { h, w, n, inChannels: ci, outChannels: co }: ConvDims): Float32Array {
  const y = new Float32Array(h * w * n * co);
  for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) for (let b = 0; b < n; b++) for (let o = 0; o < co; o++) {
    let sum = 0;
    for (let c = 0; c < ci; c++) for (let p = 0; p < 3; p++) for (let q = 0; q < 3; q++) {
      const r = i + p - 1;
      const s = j + q - 1;
      if (r >= 0 && r < h && s >= 0 && s < w) sum += x[((r * w + s) * n + b) * ci + c] * weight[((o * ci + c) * 3 + p) * 3 + q];
    }
    y[((i * w + j) * n + b) * co + o] = sum;
  }
  return y;
}

for (const d of [
  { h: 8, w: 8, n: 3, inChannels: 5, outChannels: 7 },
  { h: 5, w: 7, n: 2, inChannels: 3, outChannels: 4 },
  { h: 2, w: 2, n: 4, inChannels: 6, outChannels: 6 },
  { h: 21, w: 10, n: 1, inChannels: 4, outChannels: 2 },
]) test(`Winograd and direct 3x3 convolutions agree, forward and reverse, at ${d.h}x${d.w}`, async () => {
  const rng = new SeededStream(3, d.h * 100 + d.w);
  const random = (length: number) => Float32Array.from({ length }, () => 2 * rng.next() - 1);
  const x = random(d.h * d.w * d.n * d.inChannels);
  const weight = random(d.outChannels * d.inChannels * 9);
  const dy = random(d.h * d.w * d.n * d.outChannels);
  const feeds = {
    x: new ort.Tensor('float32', x, [d.h, d.w, d.n, d.inChannels]),
    weight: new ort.Tensor('float32', weight, [d.outChannels, d.inChannels, 3, 3]),
    dy: new ort.Tensor('float32', dy, [d.h, d.w, d.n, d.outChannels]),
  };
  const run = async (algorithm: ConvAlgorithm) => {
    const session = await ort.InferenceSession.create(convGraph(d, algorithm));
    try {
      return await session.run(feeds);
    } finally {
      await session.release();
    }
  };
  const [wino, direct] = [await run('winograd'), await run('direct')];
  assert.ok(relativeError(direct.y.data as Float32Array, loopConv(x, weight, d)) < 1e-6);
  for (const name of ['y', 'dx', 'dw']) {
    const err = relativeError(wino[name].data as Float32Array, direct[name].data as Float32Array);
    assert.ok(err < 1e-4, `${name}: ${err}`);
  }
  // dX is the adjoint of the forward map: <conv(x), dy> = <x, dX(dy)>; dW likewise in the weights.
  const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i], 0);
  const yDy = dot(direct.y.data as Float32Array, dy);
  assert.ok(Math.abs(dot(x, direct.dx.data as Float32Array) - yDy) < 1e-4 * Math.abs(yDy) + 1e-4);
  assert.ok(Math.abs(dot(weight, direct.dw.data as Float32Array) - yDy) < 1e-4 * Math.abs(yDy) + 1e-4);
});
