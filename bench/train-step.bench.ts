/**
 * Gen-0 training steps of both engines and of PyTorch, side by side in one run, each configuration in its own
 * process (bench/train-step-worker.ts; bench/train_step_torch.py) so that peak RSS is per configuration.
 *
 * Environment: SKD_BENCH_MODELS (comma list of conv4, resnet12-16-40-80-160, resnet12, resnet12-84px),
 * SKD_BENCH_ENGINES (comma list of ort, tfjs, torch; default all three; torch when `python3 -c "import torch"` works), SKD_BENCH_REPEATS (timed steps after one
 * warm-up; default 2), SKD_BENCH_THREADS (default: all cores, for every engine), SKD_BENCH_TFJS_84=1 to also time
 * tfjs at 84x84 (minutes per step), SKD_BENCH_LOOP_STEPS (steps of the end-to-end loop figure; default 4, 0 = off),
 * SKD_BENCH_MICRO_BATCH (images per micro-batch of the ORT steps; default auto: the whole batch where it fits in memory).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stealMeter } from './cpu-steal.js';
import { trainingStepFlops } from './step-flops.js';
import { BATCH, BENCH_MODELS } from './train-step-models.js';

export const describe =
  'Gen-0 step: 64 images -> 256 with the 4 rotations; train-mode forward, CE + 2 * BCE, backward, SGD (momentum 0.9, wd 5e-4). ' +
  'ort = skd\'s ONNX Runtime step graphs (CPU EP); tfjs = skd\'s TensorFlow.js engine (wasm, threaded); torch = the reference networks in PyTorch ' +
  '(bench/torch_models.py), all on the same cores with the same thread count. images_per_s counts the 256 rotated images per step (min wall time); ' +
  'cpu_s is process CPU time per step (user + system), the steadier figure on a shared machine; steal_pct is the host\'s share of the CPU time during the run. gflop_per_s is the step\'s convolution and linear work (3 x forward) over the best wall time. loop: trainGen0 on the toy set through the real loop ' +
  '(augmentation, batching, checkpoint), base images per second as the progress line reports it.';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const MODELS = Object.keys(BENCH_MODELS);
const ROTATED = 4 * BATCH;

interface Run { wall: number[]; cpu: number[]; peak_rss_mib: number; engine: string; micro_batch?: number; steal_pct?: number; [memory: string]: unknown }

function list(name: string, fallback: string[]): string[] {
  const v = process.env[name];
  return v ? v.split(',').map((s) => s.trim()).filter(Boolean) : fallback;
}

/** A Python that imports torch: python3 on PATH, else Debian's (a pyenv shim may shadow python3-torch). */
function pythonWithTorch(): string | undefined {
  for (const python of ['python3', '/usr/bin/python3']) {
    try {
      // -I: isolated, so that the project's own torch/ folder (the .pth reader) in the working directory is not taken for PyTorch.
      execFileSync(python, ['-I', '-c', 'import torch'], { stdio: 'ignore' });
      return python;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

function runChild(cmd: string, args: string[]): Run | { error: string } {
  const steal = stealMeter();
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 });
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !line.startsWith('{')) return { error: `exit ${r.status ?? r.signal}` };
  return { ...(JSON.parse(line) as Run), steal_pct: steal() };
}

/** `flops`: the step's convolution and linear-layer work (bench/step-flops.ts), for the achieved GFLOP/s. */
function summary(r: Run, flops: number): Record<string, unknown> {
  const best = Math.min(...r.wall);
  return {
    images_per_s: +(ROTATED / best).toFixed(2), step_s_min: +best.toFixed(2), step_s_all: r.wall.map((t) => +t.toFixed(2)),
    gflop_per_s: +(flops / best / 1e9).toFixed(1),
    cpu_s_min: +Math.min(...r.cpu).toFixed(2), peak_rss_mib: r.peak_rss_mib, engine: r.engine,
    // CPU time the host gave to other guests during the run (bench/cpu-steal.ts): large values mean noisy timings.
    steal_pct: r.steal_pct,
    // Images per micro-batch (64 = the whole batch in one step) and the ORT engine's memory estimate.
    ...Object.fromEntries(Object.entries(r).filter(([k]) => k === 'micro_batch' || k.endsWith('_mib') && k !== 'peak_rss_mib')),
  };
}

export async function run(): Promise<Record<string, unknown>> {
  const models = list('SKD_BENCH_MODELS', MODELS);
  const python = pythonWithTorch();
  const torch = python !== undefined;
  const engines = list('SKD_BENCH_ENGINES', ['ort', 'tfjs', 'torch']).filter((e) => e !== 'torch' || torch);
  const repeats = String(Number(process.env.SKD_BENCH_REPEATS ?? 2));
  const threads = String(Number(process.env.SKD_BENCH_THREADS ?? availableParallelism()));
  const worker = join(here, 'train-step-worker.js');
  const results: Record<string, Record<string, unknown>> = {};
  const unknown = models.filter((m) => !BENCH_MODELS[m]);
  if (unknown.length > 0) throw new Error(`unknown SKD_BENCH_MODELS ${unknown.join(', ')}: expected some of ${MODELS.join(', ')}`);
  for (const model of models) {
    const flops = trainingStepFlops(BENCH_MODELS[model](), ROTATED);
    const perEngine: Record<string, unknown> = { step_gflop: +(flops / 1e9).toFixed(1) };
    const runs: Record<string, Run> = {};
    for (const engine of engines) {
      if (engine === 'tfjs' && model === 'resnet12-84px' && !process.env.SKD_BENCH_TFJS_84) continue;
      process.stderr.write(`train-step: ${engine} ${model}\n`);
      const r = engine === 'torch'
        ? runChild(python!, [join(root, 'bench', 'train_step_torch.py'), model, repeats, threads])
        : runChild(process.execPath, [worker, engine, model, repeats, threads]);
      if ('error' in r) perEngine[engine] = r;
      else {
        runs[engine] = r;
        perEngine[engine] = summary(r, flops);
      }
    }
    const ratio = (a: string, b: string, key: 'wall' | 'cpu') =>
      runs[a] && runs[b] ? +(Math.min(...runs[b][key]) / Math.min(...runs[a][key])).toFixed(2) : undefined;
    perEngine.ratios = {
      ort_vs_torch_speed_wall: ratio('ort', 'torch', 'wall'), ort_vs_torch_speed_cpu: ratio('ort', 'torch', 'cpu'),
      ort_vs_tfjs_speed_wall: ratio('ort', 'tfjs', 'wall'), ort_vs_tfjs_speed_cpu: ratio('ort', 'tfjs', 'cpu'),
    };
    results[model] = perEngine;
  }
  const loopSteps = Number(process.env.SKD_BENCH_LOOP_STEPS ?? 4);
  const loop: Record<string, unknown> = {};
  if (loopSteps > 0) {
    for (const engine of engines.filter((e) => e !== 'torch')) {
      process.stderr.write(`train-step: loop ${engine} resnet12-16-40-80-160\n`);
      const r = spawnSync(process.execPath, [worker, engine, 'resnet12-16-40-80-160', String(loopSteps), threads], {
        cwd: root, encoding: 'utf8', env: { ...process.env, SKD_BENCH_LOOP: '1' }, stdio: ['ignore', 'pipe', 'inherit'],
      });
      const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
      loop[engine] = line.startsWith('{') ? JSON.parse(line) : { error: `exit ${r.status}` };
    }
  }
  return { batch: BATCH, images_per_step: ROTATED, threads: Number(threads), torch_available: torch, results, loop_resnet12_16_40_80_160: loop };
}
