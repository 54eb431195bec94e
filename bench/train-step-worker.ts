/**
 * One configuration of the train-step benchmark, in its own process so that its peak RSS is its own:
 * `node dist/bench/train-step-worker.js <engine> <model> <repeats> [threads]`. Prints one JSON line on stdout.
 * A step is TrainingEngine.step (train/engine.ts) on a Gen-0 batch of 64 random images: the 4 rotations make
 * 256, masks are drawn, the step graph or tfjs ops run forward + loss + backward, and SGD updates the weights.
 * SKD_BENCH_MICRO_BATCH (default auto) is the engine's micro-batch setting; the line reports the size used, and
 * for the ORT engine its memory estimate beside the RSS before the engine was built (what calibrates the estimate).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { initWeights, SeededStream } from '../models/init.js';
import { selectBackend } from '../models/tfjs-backend.js';
import { createEngine } from '../train/create-engine.js';
import { OrtEngine } from '../train/ort/engine.js';
import type { EngineName } from '../train/engine.js';
import { trainGen0 } from '../train/gen0.js';
import { BATCH, BENCH_MODELS, CLASSES } from './train-step-models.js';

/** The real loop (trainGen0 on the toy set: augmentation, batching, the step, checkpoint), one short epoch. */
async function loop(engineName: EngineName, model: string, steps: number, threads: number): Promise<void> {
  await selectBackend('wasm', { threads, log: () => undefined });
  const spec = BENCH_MODELS[model]();
  const out = await mkdtemp(join(tmpdir(), 'skd-bench-loop-'));
  try {
    const r = await trainGen0({
      dataset: 'toy', imageSize: spec.imageSize, imagesPerClass: 20, model: spec.arch, widths: spec.arch === 'conv4' ? [spec.widths[0]] : spec.widths,
      batchSize: BATCH, epochs: 1, maxStepsPerEpoch: steps, valEvery: 0, out, engine: engineName, threads, device: 'cpu',
    });
    const e = r.history[0];
    process.stdout.write(JSON.stringify({ base_images_per_s: e.imagesPerSecond, epoch_s: e.seconds, steps: e.steps, peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024) }) + '\n');
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const [engineName, model, repeatsText, threadsText] = process.argv.slice(2);
  if (process.env.SKD_BENCH_LOOP) return loop(engineName as EngineName, model, Number(repeatsText), Number(threadsText ?? availableParallelism()));
  const make = BENCH_MODELS[model];
  if (!make) throw new Error(`unknown bench model '${model}'`);
  const repeats = Number(repeatsText ?? 2);
  const threads = threadsText ? Number(threadsText) : availableParallelism();
  const spec = make();
  const backend = await selectBackend('wasm', { threads, log: () => undefined });
  const weights = initWeights(spec, 1);
  const micro = process.env.SKD_BENCH_MICRO_BATCH ?? 'auto';
  const rssBefore = process.memoryUsage().rss;
  const engine = await createEngine({
    spec, weights, batchSize: BATCH, loss: { kind: 'gen0', gamma: 2 },
    sgd: { momentum: 0.9, weightDecay: 5e-4 }, dropoutSeed: 1, dropBlockCalls: 1000, microBatch: micro === 'auto' ? 'auto' : Number(micro),
  }, { engine: engineName as EngineName, threads, device: 'cpu', log: (line) => process.stderr.write(`  ${line}\n`) });
  const memory = engine instanceof OrtEngine ? {
    estimated_step_mib: Math.round(engine.memory.estimatedBytes / 2 ** 20), whole_batch_estimate_mib: Math.round(engine.memory.wholeBatchBytes / 2 ** 20),
    usable_mib: Math.round(engine.memory.availableBytes / 2 ** 20),
  } : {};
  const rng = new SeededStream(3, 0);
  const s = spec.imageSize;
  const pixels = Float32Array.from({ length: BATCH * s * s * 3 }, () => 2 * rng.next() - 1);
  const labels = Int32Array.from({ length: BATCH }, (_, i) => i % CLASSES);
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r <= repeats; r++) {
    const start = performance.now();
    const cpuStart = process.cpuUsage();
    const result = await engine.step(pixels, labels, 0.01);
    const elapsed = (performance.now() - start) / 1000;
    const used = process.cpuUsage(cpuStart);
    if (!Number.isFinite(result.loss)) throw new Error(`non-finite loss ${result.loss}`);
    process.stderr.write(`  ${engineName} ${model} step ${r}${r === 0 ? ' (warm-up)' : ''}: ${elapsed.toFixed(2)} s\n`);
    if (r > 0) {
      wall.push(elapsed);
      cpu.push((used.user + used.system) / 1e6);
    }
  }
  await engine.dispose();
  const engineDescription = engineName === 'tfjs' ? `tfjs ${backend.description}` : `onnxruntime-node CPU EP, ${threads} intra-op threads`;
  process.stdout.write(JSON.stringify({
    wall, cpu, peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024), engine: engineDescription,
    micro_batch: engine.microBatch, rss_before_engine_mib: Math.round(rssBefore / 2 ** 20), ...memory,
  }) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
