/**
 * Training speed of the TensorFlow.js models, per available backend.
 *
 * One step is what one Gen-0 iteration of the reference does for a batch of 64 images: the 4 rotations make
 * 256 images of 32x32; forward in training mode (batch-norm statistics, dropout, DropBlock), the Gen-0
 * loss (cross-entropy + 2 * BCE on rotation logits), backward to every trainable variable, and a plain SGD
 * update. Data loading and augmentation are not included. Figures: seconds per step (min and median of
 * the timed repeats, after one warm-up step) and images/s counting the 256 rotated images.
 *
 * Environment: SKD_BENCH_MODELS (comma list of conv4,resnet12-narrow,resnet12,resnet12-64img), SKD_BENCH_BACKENDS
 * (comma list of wasm,cpu), SKD_BENCH_REPEATS (default 3), SKD_BENCH_THREADS (wasm threads; default: all cores).
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, type BackendChoice } from '../models/tfjs-backend.js';
import { conv4Spec, resnet12Spec, type ModelSpec } from '../models/spec.js';
import { initWeights } from '../models/init.js';
import { TfModel } from '../models/tfjs.js';

export const describe =
  'Gen-0 training step at 32x32: batch 64 -> 256 images after the 4 rotations; forward (train mode) + loss + backward + SGD update. ' +
  'resnet12-64img: the same on 64 images (no rotations), for comparison with per-64-image figures. ' +
  'step_s_min/median over repeats after a warm-up; images_per_s = images per step / step_s_min. cpu_s: process CPU time per step ' +
  '(user + system, all threads), a load-independent figure on a shared machine (with one wasm thread, cpu_s ~ step_s on an idle machine).';

const BATCH = 64;
const ROTATED = BATCH * 4;
const CLASSES = 64;

/** Model and images per step; 'resnet12-64img' is the full network on 64 images (no rotations), for scale. */
// The full 256-image ResNet-12 step comes first: its ~3 GiB peak must fit the 4 GiB wasm heap, which never
// shrinks and fragments as other models come and go in the same process.
const MODELS: Record<string, { spec: () => ModelSpec; images: number }> = {
  resnet12: { spec: () => resnet12Spec({ numClasses: CLASSES }), images: ROTATED },
  conv4: { spec: () => conv4Spec({ numClasses: CLASSES }), images: ROTATED },
  'resnet12-narrow': { spec: () => resnet12Spec({ widths: [16, 32, 64, 128], numClasses: CLASSES }), images: ROTATED },
  'resnet12-64img': { spec: () => resnet12Spec({ numClasses: CLASSES }), images: BATCH },
};
/** The cpu backend is plain JavaScript: only the small models are timed on it. */
const CPU_MODELS = new Set(['conv4', 'resnet12-narrow']);
/** Default backends: the cpu backend is plain JavaScript and only worth timing on request. */
const DEFAULT_BACKENDS = ['wasm'];

function listFromEnv(name: string, fallback: string[]): string[] {
  const v = process.env[name];
  return v ? v.split(',').map((s) => s.trim()).filter(Boolean) : fallback;
}

/** The Gen-0 loss: mean CE over all 4B rows + gamma * mean BCE-with-logits on one-hot rotation targets. */
function gen0Loss(logits: tf.Tensor2D, rotLogits: tf.Tensor2D, labels: tf.Tensor2D, rotTargets: tf.Tensor2D, gamma = 2): tf.Scalar {
  const ce = tf.mean(tf.neg(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), 1)));
  // BCE with logits: max(z, 0) - z * t + log(1 + exp(-|z|))
  const bce = tf.mean(tf.add(tf.sub(tf.relu(rotLogits), tf.mul(rotLogits, rotTargets)), tf.log1p(tf.exp(tf.neg(tf.abs(rotLogits))))));
  return tf.add(ce, tf.mul(bce, gamma));
}

function wasmHeapMiB(): number | undefined {
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8;
  return heap ? heap.byteLength / 2 ** 20 : undefined;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export async function timeSteps(spec: ModelSpec, images: number, repeats: number): Promise<{ wall: number[]; cpu: number[] }> {
  const model = new TfModel(spec, initWeights(spec, 1));
  const vars = model.trainableVariables();
  const x = tf.randomNormal([images, spec.imageSize, spec.imageSize, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
  const cls = Array.from({ length: images }, (_, i) => i % CLASSES);
  const labels = tf.oneHot(tf.tensor1d(cls, 'int32'), CLASSES, 1, 0, 'float32') as tf.Tensor2D;
  const rot = tf.oneHot(tf.tensor1d(Array.from({ length: images }, (_, i) => Math.floor((4 * i) / images)), 'int32'), 4, 1, 0, 'float32') as tf.Tensor2D;
  const times: number[] = [];
  const cpuTimes: number[] = [];
  for (let r = 0; r <= repeats; r++) {
    const start = performance.now();
    const cpuStart = process.cpuUsage();
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => {
        const out = model.forward(x, true);
        return gen0Loss(out.logits, out.rotLogits, labels, rot);
      }, vars);
      for (const v of vars) v.assign(tf.sub(v, tf.mul(grads[v.name], 0.01)));
      value.dataSync();
    });
    const elapsed = (performance.now() - start) / 1000;
    const cpu = process.cpuUsage(cpuStart);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    if (r > 0) {
      // the first step warms up kernels and allocations
      times.push(elapsed);
      cpuTimes.push(cpuSeconds);
    }
    process.stderr.write(`  ${spec.arch} ${spec.widths.join('-')} step ${r}${r === 0 ? ' (warm-up)' : ''}: ${elapsed.toFixed(2)} s wall, ${cpuSeconds.toFixed(2)} s cpu\n`);
  }
  tf.dispose([x, labels, rot]);
  model.dispose();
  return { wall: times, cpu: cpuTimes };
}

export async function run(): Promise<Record<string, unknown>> {
  const models = listFromEnv('SKD_BENCH_MODELS', Object.keys(MODELS));
  const backends = listFromEnv('SKD_BENCH_BACKENDS', DEFAULT_BACKENDS) as BackendChoice[];
  const repeats = Number(process.env.SKD_BENCH_REPEATS ?? 3);
  const threads = process.env.SKD_BENCH_THREADS ? Number(process.env.SKD_BENCH_THREADS) : undefined;
  const results: Record<string, unknown> = {};
  for (const backend of backends) {
    const selected = await selectBackend(backend, { threads, log: (line) => process.stderr.write(line + '\n') });
    const perModel: Record<string, unknown> = {};
    for (const name of models) {
      if (!MODELS[name]) throw new Error(`unknown bench model '${name}'`);
      if (backend === 'cpu' && !CPU_MODELS.has(name)) continue;
      const { wall, cpu } = await timeSteps(MODELS[name].spec(), MODELS[name].images, repeats);
      const best = Math.min(...wall);
      perModel[name] = {
        images_per_step: MODELS[name].images,
        step_s_min: +best.toFixed(3),
        step_s_median: +median(wall).toFixed(3),
        step_s_all: wall.map((t) => +t.toFixed(3)),
        images_per_s: +(MODELS[name].images / best).toFixed(1),
        cpu_s_min: +Math.min(...cpu).toFixed(3),
        cpu_s_median: +median(cpu).toFixed(3),
        // High-water mark of the WebAssembly heap so far in this process (it never shrinks; limit 4 GiB).
        ...(backend === 'wasm' ? { wasm_heap_mib_so_far: wasmHeapMiB() } : {}),
      };
    }
    results[backend] = { backend: selected.name, description: selected.description, models: perModel };
  }
  return { batch: BATCH, image_size: 32, results };
}
