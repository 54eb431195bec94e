/** `skd demo`: the whole method end to end on the built-in toy dataset (demo/run-demo.ts). */
import { realpathSync } from 'node:fs';
import { relative } from 'node:path';
import { FEW_SHOT_PROTOCOL } from '../../data/protocol.js';
import type { CommandModule } from 'yargs';
import { BACKEND_CHOICES, type BackendChoice } from '../../models/tfjs-backend.js';
import { ENGINE_NAMES, TRAIN_DEVICES, type EngineName, type TrainDevice } from '../../train/engine.js';
import { consoleHooks } from '../../train/progress.js';
import { runDemo, renderTable } from '../../demo/run-demo.js';
import type { DemoSizeName } from '../../demo/sizes.js';
import { microBatchOf, microBatchOptions, type MicroBatchArgs } from '../options/micro-batch.js';

interface DemoArgs extends MicroBatchArgs {
  out: string;
  quick: boolean;
  size?: DemoSizeName;
  backend: BackendChoice;
  engine: EngineName;
  device: TrainDevice;
  threads?: number;
  seed: number;
  json: boolean;
}

/**
 * Wall times of the two demo sizes on 2 CPU cores, measured on a fresh clone (2-core x86-64, default ORT engine:
 * 386 s and 82 s); README's quick start says the same (test/demo-times.test.ts checks that they agree).
 */
export const DEMO_MINUTES = { default: 6.5, quick: 1.5 } as const;

/** A path as the user would type it from where they ran the command. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'Train Gen-0, distil Gen-1, export ONNX and evaluate few-shot on the built-in toy data (offline)',
  builder: (y) => microBatchOptions(y)
    .option('out', { type: 'string', default: 'skd-demo', describe: 'Folder for models, checkpoints, logs and the report' })
    .option('quick', { type: 'boolean', default: false, describe: `A smaller run (about ${DEMO_MINUTES.quick} minutes on 2 CPU cores; the default run takes about ${DEMO_MINUTES.default})` })
    .option('size', { choices: ['default', 'quick', 'tiny'] as const, describe: 'Run size (tiny: a seconds-long smoke run); --quick is --size quick' })
    .option('engine', { choices: ENGINE_NAMES, default: 'ort' as EngineName, describe: 'Training engine: ONNX Runtime graphs (ort) or TensorFlow.js (tfjs)' })
    .option('device', { choices: TRAIN_DEVICES, default: 'auto' as TrainDevice, describe: 'ONNX Runtime engine: execution provider' })
    .option('backend', { choices: BACKEND_CHOICES, default: 'auto' as BackendChoice, describe: 'TensorFlow.js backend (the tfjs engine; validation)' })
    .option('threads', { type: 'number', describe: 'Threads for training and ONNX Runtime (default: one per core)' })
    .option('seed', { type: 'number', default: 0, describe: 'Seed of the data, initialisation, augmentation and episodes' })
    .option('json', { type: 'boolean', default: false, describe: 'Print the report as JSON on stdout (progress stays on stderr)' }) as never,
  handler: async (a) => {
    const size: DemoSizeName = a.size ?? (a.quick ? 'quick' : 'default');
    const hooks = consoleHooks();
    const log = (line: string) => process.stderr.write(line + '\n');
    try {
      const report = await runDemo({
        out: a.out, size, backend: a.backend, engine: a.engine, device: a.device, threads: a.threads, microBatch: microBatchOf(a), seed: a.seed, hooks: { ...hooks, log }, log,
      });
      if (a.json) {
        process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      } else {
        const out = shown(a.out);
        // The command as this one was started: `node dist/bin/skd.js` from a clone, `skd` when installed on PATH.
        const skd = process.argv[1] && realpathSync(process.argv[1]) !== process.argv[1] ? 'skd' : `node ${shown(process.argv[1] ?? 'dist/bin/skd.js')}`;
        const lines = [
          '', renderTable(report), '',
          `Wrote ${out}/report.md, ${out}/report.json and ${out}/curves.svg (total ${report.totalSeconds.toFixed(0)} s).`,
          '',
          'Next:',
          `  ${skd} eval --model ${out}/gen1.onnx --dataset toy --n_shots 1     # the full ${FEW_SHOT_PROTOCOL.nTestRuns}-episode protocol`,
          `  ${skd} serve --model ${out}/gen1.onnx                               # HTTP API on http://127.0.0.1:8080`,
          `  ${skd} web --model ${out}/gen1.onnx                                 # the browser demo`,
          '',
        ];
        process.stdout.write(lines.join('\n'));
      }
    } finally {
      hooks.close();
    }
  },
};
