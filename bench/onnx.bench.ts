/**
 * Inference throughput of the exported full ResNet-12 (widths 64-160-320-640, 64 classes, random init):
 * onnxruntime-node (CPU provider, graph optimisation 'all') at 32x32 and 84x84, batch 64, with NCHW and NHWC
 * input layouts and thread settings, next to TensorFlow.js (wasm backend) running the same weights.
 * images/s = images / wall time of the timed runs (after one warm-up run). Because other processes may share
 * the cores, each result also gives images per CPU-second of this process (user + system time), and the
 * 1-minute load average is recorded.
 */
import { loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { CIFAR_NORMALIZATION } from '../data/datasets.js';
import { exportOnnx } from '../export/onnx.js';
import type { InputLayout } from '../export/graph.js';
import { initWeights } from '../models/init.js';
import { resnet12Spec, type ModelSpec, type NamedWeights } from '../models/spec.js';
import { TfModel } from '../models/tfjs.js';
import { selectBackend } from '../models/tfjs-backend.js';

export const describe = 'onnxruntime-node vs TensorFlow.js (wasm) images/s, full ResNet-12 (64-160-320-640, 64 classes), batch 64, features output';

const BATCH = 64;

function randomInput(n: number): Float32Array {
  const x = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 2 ** 32 * 4 - 2;
  }
  return x;
}

interface OrtConfig { layout: InputLayout; threads: number; spinning: boolean }

async function timeOrt(spec: ModelSpec, weights: NamedWeights, { layout, threads, spinning }: OrtConfig, runs: number) {
  const bytes = exportOnnx({ spec, weights, layout, normalization: CIFAR_NORMALIZATION });
  const s = spec.imageSize;
  const session = await ort.InferenceSession.create(bytes, {
    graphOptimizationLevel: 'all', executionMode: 'sequential', intraOpNumThreads: threads, interOpNumThreads: 1,
    // Spinning worker threads burn CPU while waiting; without it CPU time counts only work.
    ...(spinning ? {} : { extra: { session: { intra_op: { allow_spinning: '0' } } } }),
  });
  const dims = layout === 'nchw' ? [BATCH, 3, s, s] : [BATCH, s, s, 3];
  const feeds = { images: new ort.Tensor('float32', randomInput(BATCH * 3 * s * s), dims) };
  await session.run(feeds);
  const times: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  await session.release();
  return summarise(times, cpu);
}

function summarise(times: number[], cpu: NodeJS.CpuUsage) {
  const total = times.reduce((a, b) => a + b, 0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return {
    images_per_cpu_s: +((BATCH * times.length) / cpuSeconds).toFixed(1),
    images_per_s: +((BATCH * times.length) / (total / 1000)).toFixed(1),
    best_images_per_s: +(BATCH / (Math.min(...times) / 1000)).toFixed(1),
    ms_per_batch: +(total / times.length).toFixed(1),
    runs: times.length,
  };
}

function timeTf(model: TfModel, size: number, runs: number) {
  const x = tf.tensor4d(randomInput(BATCH * size * size * 3), [BATCH, size, size, 3]);
  const warm = tf.tensor4d(randomInput(8 * size * size * 3), [8, size, size, 3]);
  const once = (input: tf.Tensor4D) => tf.tidy(() => model.forward(input, false).features.dataSync());
  once(warm);
  const times: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    once(x);
    times.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  x.dispose();
  warm.dispose();
  return summarise(times, cpu);
}

export async function run(): Promise<Record<string, unknown>> {
  const loadBefore = loadavg()[0];
  const ortResults: Record<string, unknown> = {};
  const tfResults: Record<string, unknown> = {};
  const log = (line: string) => process.stderr.write(`  ${line}\n`);
  const backend = await selectBackend('wasm', { log: () => undefined });
  for (const size of [32, 84]) {
    const spec = resnet12Spec({ numClasses: 64, imageSize: size });
    const weights = initWeights(spec, 0);
    const runs = size === 32 ? 5 : 2;
    const configs: OrtConfig[] = size === 32
      ? [{ layout: 'nchw', threads: 2, spinning: true }, { layout: 'nchw', threads: 2, spinning: false }, { layout: 'nhwc', threads: 2, spinning: true }, { layout: 'nchw', threads: 1, spinning: true }]
      : [{ layout: 'nchw', threads: 2, spinning: true }, { layout: 'nhwc', threads: 2, spinning: true }];
    for (const config of configs) {
      const key = `${size}x${size}_${config.layout}_threads_${config.threads}${config.spinning ? '' : '_nospin'}`;
      ortResults[key] = await timeOrt(spec, weights, config, runs);
      log(`onnxruntime ${key}: ${JSON.stringify(ortResults[key])}`);
    }
    const model = new TfModel(spec, weights);
    tfResults[`${size}x${size}`] = timeTf(model, size, 1);
    log(`tfjs ${backend.name} ${size}x${size}: ${JSON.stringify(tfResults[`${size}x${size}`])}`);
    model.dispose();
  }
  return {
    batch: BATCH,
    onnxruntime: { version: ort.env.versions.common, provider: 'cpu', graph_optimization: 'all', results: ortResults },
    tfjs: { backend: backend.name, description: backend.description, results: tfResults },
    target_images_per_s_32x32: 250,
    load_average_1min: { before: +loadBefore.toFixed(2), after: +loadavg()[0].toFixed(2) },
  };
}
