/**
 * End-to-end training throughput of `trainGen0` / `trainGen1` (the loop users run): data shuffling,
 * augmentation, the rotations, forward/backward, SGD with momentum and weight decay, accuracy bookkeeping and
 * the per-epoch checkpoint. Toy data at 32x32, batch 64, two short epochs per model on the wasm backend, figures from the second.
 *
 * Environment: SKD_BENCH_TRAIN_MODELS (comma list of conv4,resnet12-narrow), SKD_BENCH_TRAIN_STEPS (default 4).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '../models/tfjs-backend.js';
import type { TrainOptions } from '../train/config.js';
import { trainGen0 } from '../train/gen0.js';
import { trainGen1 } from '../train/gen1.js';

export const describe =
  'trainGen0 / trainGen1 epoch throughput on the toy set (32x32, batch 64, SGD momentum 0.9, wd 5e-4, checkpoint per epoch), wasm backend. ' +
  'images_per_s counts unrotated training images per second of step time (Gen-0 runs 4x that through the network, Gen-1 2x plus the teacher); ' +
  'cpu_s_per_step: process CPU seconds per step (steadier on a shared machine); epoch_s includes the checkpoint write. Figures from the second of two epochs (warm kernels).';

const MODELS: Record<string, Pick<TrainOptions, 'model' | 'widths'>> = {
  conv4: { model: 'conv4', widths: [64] },
  'resnet12-narrow': { model: 'resnet12', widths: [16, 32, 64, 128] },
};

export async function run(): Promise<Record<string, unknown>> {
  const names = (process.env.SKD_BENCH_TRAIN_MODELS ?? 'conv4,resnet12-narrow').split(',').map((s) => s.trim()).filter(Boolean);
  const steps = Number(process.env.SKD_BENCH_TRAIN_STEPS ?? 4);
  const backend = await selectBackend('wasm', { log: (l) => process.stderr.write(l + '\n') });
  const results: Record<string, unknown> = {};
  for (const name of names) {
    const m = MODELS[name];
    if (!m) throw new Error(`unknown bench model '${name}'`);
    const out = await mkdtemp(join(tmpdir(), 'skd-bench-train-'));
    try {
      // Two epochs each; the figures are the second epoch's (kernels warmed up by the first).
      const common: TrainOptions = { dataset: 'toy', imageSize: 32, imagesPerClass: 8, ...m, batchSize: 64, epochs: 2, lrDecayEpochs: [], maxStepsPerEpoch: steps, out };
      let cpuMark = process.cpuUsage();
      const cpuPerEpoch: number[] = [];
      const hooks = {
        onStart: () => { cpuMark = process.cpuUsage(); },
        onEpoch: () => { const u = process.cpuUsage(cpuMark); cpuPerEpoch.push((u.user + u.system) / 1e6); cpuMark = process.cpuUsage(); },
      };
      const g0 = await trainGen0(common, hooks);
      const [g1] = await trainGen1({ ...common, pathT: g0.checkpoint }, hooks);
      const figures = (r: typeof g0, cpuSeconds: number) => ({
        images_per_s: +r.history[1].imagesPerSecond.toFixed(1),
        steps: r.history[1].steps,
        epoch_s: +r.history[1].seconds.toFixed(2),
        cpu_s_per_step: +(cpuSeconds / r.history[1].steps).toFixed(3),
      });
      results[name] = { gen0: figures(g0, cpuPerEpoch[1]), gen1: figures(g1, cpuPerEpoch[3]) };
      process.stderr.write(`  ${name}: ${JSON.stringify(results[name])}\n`);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }
  return { backend: backend.description, batch: 64, image_size: 32, results };
}
